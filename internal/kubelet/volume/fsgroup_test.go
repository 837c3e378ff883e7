//go:build unix

package volume

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestFSGroupMode(t *testing.T) {
	tests := []struct {
		name     string
		mode     os.FileMode
		readOnly bool
		dir      bool
		want     os.FileMode
	}{
		// The conformance tests' secret: defaultMode 0440 stays 0440.
		{"read-only file 0440", 0o440, true, false, 0o440},
		{"read-only file 0400 gains group read", 0o400, true, false, 0o440},
		{"read-only file 0644 unchanged", 0o644, true, false, 0o644},
		{"token or trust anchors 0600 becomes 0640", 0o600, true, false, 0o640},
		{"read-only file gains no write", 0o444, true, false, 0o444},
		{"writable file gains group read-write", 0o644, false, false, 0o664},
		{"writable file 0600", 0o600, false, false, 0o660},
		{"read-only dir gains search and setgid", 0o755, true, true, 0o755 | os.ModeSetgid},
		{"read-only dir 0700", 0o700, true, true, 0o750 | os.ModeSetgid},
		{"writable dir 0750", 0o750, false, true, 0o770 | os.ModeSetgid},
		{"writable dir 0777", 0o777, false, true, 0o777 | os.ModeSetgid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := fsGroupMode(tc.mode, tc.readOnly, tc.dir); got != tc.want {
				t.Errorf("fsGroupMode(%v, readOnly %v, dir %v) = %v, want %v", tc.mode, tc.readOnly, tc.dir, got, tc.want)
			}
		})
	}
}

// testFSGroup is a group the test may give files: any group when it runs
// as root, else its own.
func testFSGroup() int64 {
	if os.Geteuid() == 0 {
		return 4242
	}
	return int64(os.Getgid())
}

// ownedBy reports the group and mode of path (not following a symlink).
func ownedBy(t *testing.T, path string) (int64, os.FileMode) {
	t.Helper()
	info, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	gid, err := gidOf(info)
	if err != nil {
		t.Fatal(err)
	}
	return gid, info.Mode()
}

func TestSetUpFSGroup(t *testing.T) {
	src := newFakeSources()
	src.setSecret("ns", "sec", map[string][]byte{"data-1": []byte("value-1")})
	src.setBundle("plain", "", nil, testCA(t, "root"))
	g := testFSGroup()
	secretVol := v1.Volume{Name: "secret-volume", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{
		SecretName: "sec", DefaultMode: ptr[int32](0o440),
	}}}
	projectedVol := v1.Volume{Name: "projected-secret-volume", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{
		DefaultMode: ptr[int32](0o440),
		Sources: []v1.VolumeProjection{
			{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "sec"}}},
			{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token"}},
			{ClusterTrustBundle: &v1.ClusterTrustBundleProjection{Name: ptr("plain"), Path: "ca.pem"}},
		},
	}}}
	scratch := v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}
	pod := testPod(secretVol, projectedVol, scratch)
	pod.Spec.SecurityContext = &v1.PodSecurityContext{FSGroup: &g, RunAsUser: ptr[int64](1000)}
	m := newTestManager(t, src)
	if err := m.SetUp(context.Background(), pod); err != nil {
		t.Fatalf("SetUp: %v", err)
	}

	wantFiles := map[string]map[string]os.FileMode{
		m.volumeDir(pod.UID, kindSecret, "secret-volume"): {"data-1": 0o440},
		// Tokens and trust anchors are 0600 with an fsGroup, then 0640.
		m.volumeDir(pod.UID, kindProjected, "projected-secret-volume"): {"data-1": 0o440, "token": 0o640, "ca.pem": 0o640},
	}
	for dir, files := range wantFiles {
		got := readVolume(t, dir)
		for name, mode := range files {
			if f, ok := got[name]; !ok || f.Mode != mode {
				t.Errorf("%s/%s: mode %v (present %v), want %v", filepath.Base(dir), name, f.Mode, ok, mode)
			}
			real, err := filepath.EvalSymlinks(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if gid, _ := ownedBy(t, real); gid != g {
				t.Errorf("%s/%s: group %d, want the fsGroup %d", filepath.Base(dir), name, gid, g)
			}
		}
		// Every directory of the volume, the root and the content
		// directory included, has the group, search for it and setgid.
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			gid, mode := ownedBy(t, p)
			if gid != g || mode&os.ModeSetgid == 0 || mode&0o050 != 0o050 {
				t.Errorf("dir %s: group %d mode %v, want group %d, g+rx and setgid", strings.TrimPrefix(p, dir), gid, mode, g)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	empty := m.volumeDir(pod.UID, kindEmptyDir, "scratch")
	if gid, mode := ownedBy(t, empty); gid != g || mode.Perm() != 0o777 || mode&os.ModeSetgid == 0 {
		t.Errorf("emptyDir: group %d mode %v, want group %d, 0777 and setgid", gid, mode, g)
	}

	// A later sync with the same content writes nothing and keeps the
	// setgid bits; the emptyDir is not walked again.
	secretDir := m.volumeDir(pod.UID, kindSecret, "secret-volume")
	before, err := os.Readlink(filepath.Join(secretDir, dataDirName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(empty, "mine"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.SetUp(context.Background(), pod); err != nil {
		t.Fatalf("second SetUp: %v", err)
	}
	if after, _ := os.Readlink(filepath.Join(secretDir, dataDirName)); after != before {
		t.Errorf("unchanged secret rewritten: ..data %s -> %s", before, after)
	}
	if _, mode := ownedBy(t, secretDir); mode&os.ModeSetgid == 0 {
		t.Errorf("secret volume root lost setgid on the second sync: %v", mode)
	}
	if _, mode := ownedBy(t, filepath.Join(empty, "mine")); mode.Perm() != 0o600 {
		t.Errorf("a container's file in the emptyDir changed mode to %v on the second sync", mode.Perm())
	}
}

func TestSetUpWithoutFSGroup(t *testing.T) {
	src := newFakeSources()
	src.setSecret("ns", "sec", map[string][]byte{"data-1": []byte("value-1")})
	m := newTestManager(t, src)
	pod := testPod(v1.Volume{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "sec", DefaultMode: ptr[int32](0o400)}}},
		v1.Volume{Name: "p", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{DefaultMode: ptr[int32](0o644),
			Sources: []v1.VolumeProjection{{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token"}}}}}})
	if err := m.SetUp(context.Background(), pod); err != nil {
		t.Fatalf("SetUp: %v", err)
	}
	if f := readVolume(t, m.volumeDir(pod.UID, kindSecret, "s"))["data-1"]; f.Mode != 0o400 {
		t.Errorf("secret mode %v, want the defaultMode 0400", f.Mode)
	}
	if f := readVolume(t, m.volumeDir(pod.UID, kindProjected, "p"))["token"]; f.Mode != 0o644 {
		t.Errorf("token mode %v, want the defaultMode 0644", f.Mode)
	}
	if _, mode := ownedBy(t, m.volumeDir(pod.UID, kindSecret, "s")); mode&os.ModeSetgid != 0 {
		t.Errorf("volume root has setgid without an fsGroup: %v", mode)
	}
}
