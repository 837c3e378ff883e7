package cleanup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckDataDir(t *testing.T) {
	base := t.TempDir()
	mk := func(name string, entries ...string) string {
		d := filepath.Join(base, name)
		for _, e := range entries {
			if err := os.MkdirAll(filepath.Join(d, e), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		_ = os.MkdirAll(d, 0o700)
		return d
	}
	for _, tc := range []struct {
		dir     string
		wantErr string
	}{
		{"/", "system directory"},
		{"/var/lib", "system directory"},
		{"relative", "absolute"},
		{mk("server", "tls", "etcd"), ""},
		{mk("agent", "agent"), ""},
		{mk("empty"), ""},
		{filepath.Join(base, "missing"), ""},
		{mk("home", "Documents", "src"), "does not look like skiff's"},
	} {
		err := checkDataDir(tc.dir)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("checkDataDir(%s) = %v, want error containing %q", tc.dir, err, tc.wantErr)
		}
	}
}
