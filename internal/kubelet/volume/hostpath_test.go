package volume

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestCheckHostPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name    string
		path    string
		typ     v1.HostPathType
		wantErr string
		check   func(t *testing.T, path string)
	}{
		{name: "unset checks nothing", path: missing, typ: v1.HostPathUnset},
		{name: "DirectoryOrCreate creates 0755", path: filepath.Join(dir, "made", "deep"), typ: v1.HostPathDirectoryOrCreate,
			check: wantMode(os.ModeDir | 0o755)},
		{name: "DirectoryOrCreate on an existing dir", path: dir, typ: v1.HostPathDirectoryOrCreate},
		{name: "DirectoryOrCreate on a file", path: file, typ: v1.HostPathDirectoryOrCreate,
			wantErr: "hostPath type check failed: " + file + " is not a directory, it's a File"},
		{name: "FileOrCreate creates an empty file", path: filepath.Join(dir, "new-file"), typ: v1.HostPathFileOrCreate,
			check: wantMode(0o644)},
		{name: "FileOrCreate on an existing file", path: file, typ: v1.HostPathFileOrCreate},
		{name: "FileOrCreate on a dir", path: dir, typ: v1.HostPathFileOrCreate,
			wantErr: "hostPath type check failed: " + dir + " is not a file, it's a Directory"},
		{name: "Directory", path: dir, typ: v1.HostPathDirectory},
		{name: "Directory missing", path: missing, typ: v1.HostPathDirectory, wantErr: "hostPath " + missing + " doesn't exist"},
		{name: "File", path: file, typ: v1.HostPathFile},
		{name: "File missing", path: missing, typ: v1.HostPathFile, wantErr: "hostPath " + missing + " doesn't exist"},
		{name: "File on a dir", path: dir, typ: v1.HostPathFile, wantErr: "hostPath type check failed: " + dir + " is not a file, it's a Directory"},
		{name: "Socket", path: sock, typ: v1.HostPathSocket},
		{name: "Socket on a file", path: file, typ: v1.HostPathSocket, wantErr: "hostPath type check failed: " + file + " is not a socket file, it's a File"},
		{name: "CharDevice", path: "/dev/null", typ: v1.HostPathCharDev},
		{name: "CharDevice on a file", path: file, typ: v1.HostPathCharDev, wantErr: "hostPath type check failed: " + file + " is not a character device, it's a File"},
		{name: "BlockDevice on a char device", path: "/dev/null", typ: v1.HostPathBlockDev,
			wantErr: "hostPath type check failed: /dev/null is not a block device, it's a CharDevice"},
		{name: "BlockDevice missing", path: missing, typ: v1.HostPathBlockDev, wantErr: "hostPath " + missing + " doesn't exist"},
		{name: "invalid type", path: dir, typ: "Nonsense", wantErr: "Nonsense is an invalid volume type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkHostPath(&v1.HostPathVolumeSource{Path: tc.path, Type: &tc.typ})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantErr {
				t.Fatalf("error = %q, want %q", got, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t, tc.path)
			}
		})
	}
}

func wantMode(want os.FileMode) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		t.Helper()
		info, err := os.Stat(path)
		if err != nil {
			t.Fatalf("stat: %v", err)
		}
		if got := info.Mode() & (os.ModeDir | os.ModePerm); got != want {
			t.Errorf("mode of %s = %v, want %v", path, got, want)
		}
	}
}
