package volume

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// tmpfsMounts returns the mountinfo lines of tmpfs mounts on dir.
func tmpfsMounts(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 8 && f[4] == dir && strings.Contains(line, " - tmpfs ") {
			out = append(out, line)
		}
	}
	return out
}

func TestTmpfsVolumes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting tmpfs needs root")
	}
	probe := t.TempDir()
	if err := mountTmpfs(probe, 1<<20); err != nil {
		t.Skipf("cannot mount tmpfs here (no CAP_SYS_ADMIN?): %v", err)
	}
	if err := unmount(probe); err != nil {
		t.Fatal(err)
	}

	src := newFakeSources()
	src.setSecret("ns", "sec", map[string][]byte{"k": []byte("v")})
	m := newTestManager(t, src)
	m.tmpfs = true
	pod := testPod(
		v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("64Mi"))}}},
		v1.Volume{Name: "disk", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		v1.Volume{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "sec"}}},
	)
	t.Cleanup(func() { _ = m.TearDown(pod.UID) })
	ctx := context.Background()
	mem := m.volumeDir(pod.UID, kindEmptyDir, "mem")
	disk := m.volumeDir(pod.UID, kindEmptyDir, "disk")
	sec := m.volumeDir(pod.UID, kindSecret, "sec")

	for i := 0; i < 2; i++ { // the second SetUp must not stack mounts
		if err := m.SetUp(ctx, pod); err != nil {
			t.Fatalf("SetUp #%d: %v", i+1, err)
		}
	}
	memMounts := tmpfsMounts(t, mem)
	if len(memMounts) != 1 {
		t.Fatalf("tmpfs mounts on %s = %q, want exactly one", mem, memMounts)
	}
	if !strings.Contains(memMounts[0], "size=65536k") {
		t.Errorf("memory emptyDir mount %q lacks size=65536k", memMounts[0])
	}
	if got := tmpfsMounts(t, sec); len(got) != 1 {
		t.Errorf("secret volume tmpfs mounts = %q, want one", got)
	}
	// Pod memory limit 128Mi caps the secret's tmpfs.
	if got := tmpfsMounts(t, sec); len(got) == 1 && !strings.Contains(got[0], "size=131072k") {
		t.Errorf("secret tmpfs %q lacks size=131072k", got[0])
	}
	if got := tmpfsMounts(t, disk); len(got) != 0 {
		t.Errorf("disk emptyDir is a tmpfs: %q", got)
	}
	if b, err := os.ReadFile(sec + "/k"); err != nil || string(b) != "v" {
		t.Errorf("secret file = %q, %v", b, err)
	}

	if err := m.TearDown(pod.UID); err != nil {
		t.Fatalf("TearDown: %v", err)
	}
	for _, dir := range []string{mem, sec} {
		if got := tmpfsMounts(t, dir); len(got) != 0 {
			t.Errorf("still mounted after TearDown: %q", got)
		}
	}
	if _, err := os.Stat(m.PodDir(pod.UID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pod dir after TearDown: %v", err)
	}
}
