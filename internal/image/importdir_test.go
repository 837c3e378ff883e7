package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeCtr puts a ctr on PATH that logs its imports and keeps an image
// list: importing x.tar creates example.com/x:1.
func fakeCtr(t *testing.T) (socket, imports, have string) {
	t.Helper()
	dir := t.TempDir()
	imports, have = filepath.Join(dir, "imports.log"), filepath.Join(dir, "have")
	script := `#!/bin/sh
for last in "$@"; do :; done
case "$*" in
*"images list --quiet"*) cat "` + have + `" 2>/dev/null ;;
*"images import "*)
	name=$(basename "$last" .tar)
	echo "$name" >> "` + imports + `"
	echo "example.com/$name:1" >> "` + have + `"
	echo "unpacking example.com/$name:1 (sha256:00)...done" ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "ctr"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	socket = filepath.Join(dir, "containerd.sock")
	if err := os.WriteFile(socket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return socket, imports, have
}

func TestImportDirSkipsWhatIsImported(t *testing.T) {
	socket, imports, have := fakeCtr(t)
	images := t.TempDir()
	for _, n := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(images, n+".tar"), []byte(n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	stamp := filepath.Join(t.TempDir(), "stamp.json")
	run := func(want string) {
		t.Helper()
		_ = os.Remove(imports)
		if err := ImportDir(t.Context(), socket, images, stamp, nil); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(imports)
		if strings.Join(strings.Fields(string(got)), " ") != want {
			t.Errorf("imported %q, want %q", strings.Fields(string(got)), want)
		}
	}
	run("a b") // first start: everything
	run("")    // restart: nothing changed
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(filepath.Join(images, "b.tar"), later, later); err != nil {
		t.Fatal(err)
	}
	run("b") // a changed tarball
	if err := os.WriteFile(have, []byte("example.com/b:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run("a") // containerd lost an image
	if err := ImportDir(t.Context(), socket, images, "", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(imports); strings.Join(strings.Fields(string(got)), " ") != "a a b" {
		t.Errorf("without a stamp imported %q, want both again", strings.Fields(string(got)))
	}
}
