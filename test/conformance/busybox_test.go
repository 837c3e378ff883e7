//go:build conformance

package conformance

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The suite's busybox image is Docker's, built from upstream busybox with
// its defconfig. Debian's busybox-static differs where tests look: its sh
// drops environment variables whose names are not shell identifiers
// (`data-1`, which the ConfigMap and Secret env tests print with `sh -c
// env`), and bash as sh words errors differently ("read only busybox
// container" expects `/bin/sh: can't create /file: Read-only file
// system`). So the runner builds upstream's busybox, from the pristine
// tarball Debian's archive serves, static, with the defconfig.
const (
	busyboxVersion = "1.37.0"
	busyboxURL     = "http://deb.debian.org/debian/pool/main/b/busybox/busybox_" + busyboxVersion + ".orig.tar.bz2"
	busyboxSHA256  = "3311dff32e746499f4df0d5df04d7eb396382d7e108bb9250e7b519b837043a4"
	busyboxMade    = "upstream's " + busyboxVersion + ", built static with its defconfig from the pristine tarball in Debian's archive"
)

// buildBusybox returns upstream's busybox built static into dir, or the
// one built there before.
func buildBusybox(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "busybox-"+busyboxVersion)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	t.Logf("building busybox %s (cached as %s)", busyboxVersion, bin)
	work := t.TempDir()
	tarball := filepath.Join(work, "busybox.tar.bz2")
	if err := download(busyboxURL, tarball, busyboxSHA256); err != nil {
		t.Fatalf("busybox source: %v", err)
	}
	src := filepath.Join(work, "busybox-"+busyboxVersion)
	for _, step := range [][]string{
		{"tar", "-xjf", tarball, "-C", work},
		{"make", "-C", src, "defconfig"},
		{"sed", "-i", "s/^# CONFIG_STATIC is not set/CONFIG_STATIC=y/", filepath.Join(src, ".config")},
		{"make", "-C", src, fmt.Sprintf("-j%d", runtime.NumCPU())},
	} {
		if out, err := exec.Command(step[0], step[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("busybox build: %s: %v\n%s", strings.Join(step, " "), err, tail(out, 30))
		}
	}
	tmp := bin + ".tmp"
	data, err := os.ReadFile(filepath.Join(src, "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// download fetches url into file and checks its SHA-256.
func download(url, file, sum string) error {
	client := &http.Client{Timeout: 5 * time.Minute}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, 64<<20)); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return fmt.Errorf("GET %s: sha256 %s, want %s", url, got, sum)
	}
	return f.Close()
}

// tail is the last n lines of out.
func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
