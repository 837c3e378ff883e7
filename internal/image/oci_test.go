package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// readTar returns the regular files of a tarball by name, and every
// entry's header in order.
func readTar(t *testing.T, data []byte) (map[string][]byte, []*tar.Header) {
	t.Helper()
	files := map[string][]byte{}
	var hdrs []*tar.Header
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, hdrs
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		hdrs = append(hdrs, h)
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("read %s: %v", h.Name, err)
			}
			files[h.Name] = b
		}
	}
}

func blob(t *testing.T, files map[string][]byte, d descriptor) []byte {
	t.Helper()
	b, ok := files["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")]
	if !ok {
		t.Fatalf("blob %s missing", d.Digest)
	}
	if got := digestOf(b); got != d.Digest || int64(len(b)) != d.Size {
		t.Fatalf("blob %s: digest %s size %d, descriptor size %d", d.Digest, got, len(b), d.Size)
	}
	return b
}

func TestWriteLayout(t *testing.T) {
	img := Image{
		Refs:   []string{"example.com/a/b:v1", "example.com/a/b:v2"},
		Config: ImageConfig{Entrypoint: []string{"/server"}, Env: []string{"A=1"}, ExposedPorts: []string{"8080/tcp"}},
		Files: []File{
			{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
			{Path: "/usr/bin/tool", Mode: 0o755, Data: []byte("#!")},
			{Path: "/bin/sh", Link: "/usr/bin/tool"},
		},
	}
	var buf bytes.Buffer
	if err := WriteLayout(&buf, img); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := WriteLayout(&again, img); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two writes of the same image differ")
	}

	files, _ := readTar(t, buf.Bytes())
	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", got)
	}
	var idx index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	var names [][2]string
	for _, m := range idx.Manifests {
		names = append(names, [2]string{m.Annotations[annotationImageName], m.Annotations[annotationRefName]})
		if m.Platform == nil || *m.Platform != (platform{Architecture: "amd64", OS: "linux"}) {
			t.Errorf("manifest %s platform = %v", m.Digest, m.Platform)
		}
	}
	if diff := cmp.Diff([][2]string{{"example.com/a/b:v1", "v1"}, {"example.com/a/b:v2", "v2"}}, names); diff != "" {
		t.Errorf("index names (-want +got):\n%s", diff)
	}
	var man manifest
	if err := json.Unmarshal(blob(t, files, idx.Manifests[0]), &man); err != nil {
		t.Fatal(err)
	}
	var cfg configFile
	if err := json.Unmarshal(blob(t, files, man.Config), &cfg); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{man.Layers[0].Digest}, cfg.RootFS.DiffIDs); diff != "" {
		t.Errorf("diff_ids (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/server"}, cfg.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	if _, ok := cfg.Config.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports = %v", cfg.Config.ExposedPorts)
	}

	_, hdrs := readTar(t, blob(t, files, man.Layers[0]))
	type entry struct {
		Name string
		Type byte
		Mode int64
		Link string
	}
	var got []entry
	for _, h := range hdrs {
		got = append(got, entry{h.Name, h.Typeflag, h.Mode, h.Linkname})
	}
	want := []entry{
		{"tmp/", tar.TypeDir, 0o1777, ""},
		{"usr/", tar.TypeDir, 0o755, ""},
		{"usr/bin/", tar.TypeDir, 0o755, ""},
		{"usr/bin/tool", tar.TypeReg, 0o755, ""},
		{"bin/", tar.TypeDir, 0o755, ""},
		{"bin/sh", tar.TypeSymlink, 0o777, "/usr/bin/tool"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
}

func TestWriteLayoutRejects(t *testing.T) {
	tests := []struct {
		name string
		img  Image
	}{
		{"no ref", Image{}},
		{"untagged ref", Image{Refs: []string{"example.com/a"}}},
		{"port but no tag", Image{Refs: []string{"localhost:5000/a"}}},
		{"digest ref", Image{Refs: []string{"example.com/a@sha256:00"}}},
		{"path outside", Image{Refs: []string{"a:b"}, Files: []File{{Path: "../x"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := WriteLayout(io.Discard, tt.img); err == nil {
				t.Error("WriteLayout succeeded, want an error")
			}
		})
	}
}
