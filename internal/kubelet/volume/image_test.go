package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// bindImages is an ImageMounter that bind-mounts a directory per image,
// as containerd's overlayfs snapshotter mounts a one-layer image, and
// logs its calls.
type bindImages struct {
	images map[string]string // image -> directory with its files
	mu     sync.Mutex
	calls  []string
}

func (b *bindImages) log(call string) {
	b.mu.Lock()
	b.calls = append(b.calls, call)
	b.mu.Unlock()
}

func (b *bindImages) Mount(_ context.Context, image, dir string) error {
	b.log("mount " + image)
	src, ok := b.images[image]
	if !ok {
		return errors.New("no such image")
	}
	if err := syscall.Mount(src, dir, "", syscall.MS_BIND, ""); err != nil {
		return err
	}
	return syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, "")
}

func (b *bindImages) Unmount(_ context.Context, dir string) error {
	b.log("unmount " + filepath.Base(dir))
	return unmount(dir)
}

func (b *bindImages) takeCalls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.calls
	b.calls = nil
	return out
}

// mountOptions are the per-mount options of the mount on dir.
func mountOptions(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 5 && UnescapeMountInfo(f[4]) == dir {
			return strings.Split(f[5], ",")
		}
	}
	return nil
}

func TestImageVolume(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	content := t.TempDir()
	for _, d := range []string{"etc", "usr/share/web"} {
		if err := os.MkdirAll(filepath.Join(content, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(content, "etc", "os-release"), []byte("NAME=test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// An absolute link, as images have them: it means the image's /etc.
	if err := os.Symlink("/etc", filepath.Join(content, "conf")); err != nil {
		t.Fatal(err)
	}
	images := &bindImages{images: map[string]string{"sha256:aa": content}}
	m := newTestManager(t, newFakeSources())
	m.SetImageMounter(images)
	pod := testPod(v1.Volume{Name: "img", VolumeSource: v1.VolumeSource{Image: &v1.ImageVolumeSource{Reference: "example.com/img:1"}}})
	t.Cleanup(func() { _ = m.TearDown(pod.UID) })
	ctx := context.Background()
	dir := m.volumeDir(pod.UID, kindImage, "img")

	// SetUp leaves image volumes to the kubelet's pull and MountImage.
	if err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	c := &v1.Container{Name: "app", VolumeMounts: []v1.VolumeMount{{Name: "img", MountPath: "/data"}}}
	if _, err := m.Mounts(pod, c, nil); err == nil || !strings.Contains(err.Error(), "is not mounted") {
		t.Fatalf("Mounts before MountImage: %v, want a not-mounted error", err)
	}
	if mounted, err := m.ImageMounted(pod, "img"); err != nil || mounted {
		t.Fatalf("ImageMounted before MountImage = %v, %v", mounted, err)
	}
	for range 2 { // the second finds it mounted
		if err := m.MountImage(ctx, pod, "img", "sha256:aa"); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{"unmount img", "mount sha256:aa"}, images.takeCalls()); diff != "" {
		t.Errorf("mounter calls (-want +got):\n%s", diff)
	}
	if mounted, err := m.ImageMounted(pod, "img"); err != nil || !mounted {
		t.Fatalf("ImageMounted = %v, %v", mounted, err)
	}
	opts := mountOptions(t, dir)
	for _, want := range []string{"ro", "nosuid", "nodev", "noexec"} {
		if !slices.Contains(opts, want) {
			t.Errorf("mount options %v lack %s", opts, want)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "new"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("writing into the volume: %v, want EROFS", err)
	}

	// Read-only in the container whatever the volumeMount says; subPaths
	// resolve inside the image, absolute links from its root.
	c.VolumeMounts = []v1.VolumeMount{
		{Name: "img", MountPath: "/data"},
		{Name: "img", MountPath: "/etc/app", SubPath: "etc"},
		{Name: "img", MountPath: "/conf", SubPath: "conf/os-release"},
	}
	got, err := m.Mounts(pod, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []*runtimeapi.Mount{
		{ContainerPath: "/data", HostPath: dir, Readonly: true},
		{ContainerPath: "/etc/app", HostPath: filepath.Join(dir, "etc"), Readonly: true},
		{ContainerPath: "/conf", HostPath: filepath.Join(dir, "etc", "os-release"), Readonly: true},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b *runtimeapi.Mount) bool {
		return a.ContainerPath == b.ContainerPath && a.HostPath == b.HostPath && a.Readonly == b.Readonly
	})); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
	c.VolumeMounts = []v1.VolumeMount{{Name: "img", MountPath: "/x", SubPath: "missing"}}
	if _, err := m.Mounts(pod, c, nil); err == nil || !strings.Contains(err.Error(), "failed to prepare subPath") {
		t.Errorf("a missing subPath: %v, want a subPath error", err)
	}

	// TearDown goes through the mounter (which releases the runtime's
	// lease and view) and leaves nothing mounted.
	if err := m.TearDown(pod.UID); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"unmount img"}, images.takeCalls()); diff != "" {
		t.Errorf("mounter calls at TearDown (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(m.PodDir(pod.UID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pod dir after TearDown: %v", err)
	}
	if _, err := os.Stat(filepath.Join(content, "etc", "os-release")); err != nil {
		t.Errorf("the image's files after TearDown: %v", err)
	}
}

func TestImageVolumeErrors(t *testing.T) {
	pod := testPod(v1.Volume{Name: "img", VolumeSource: v1.VolumeSource{Image: &v1.ImageVolumeSource{Reference: "example.com/img:1"}}})
	m := newTestManager(t, newFakeSources())
	err := m.MountImage(context.Background(), pod, "img", "sha256:aa")
	if err == nil || !strings.Contains(err.Error(), "image volumes need skiff's own containerd") {
		t.Errorf("MountImage without a mounter: %v", err)
	}
	// A failed mount leaves the volume unmounted.
	m.SetImageMounter(&bindImages{})
	if err := m.MountImage(context.Background(), pod, "img", "sha256:bb"); err == nil || !strings.Contains(err.Error(), "no such image") {
		t.Errorf("MountImage of a missing image: %v", err)
	}
	if mounted, err := m.ImageMounted(pod, "img"); err != nil || mounted {
		t.Errorf("ImageMounted after a failed mount = %v, %v", mounted, err)
	}
	if err := m.TearDown(pod.UID); err != nil {
		t.Fatal(err)
	}
}

func TestResolveImageSubPath(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a/b", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"abs":        "/a/b",
		"rel":        "a/b",
		"a/up":       "../etc",
		"escape":     "../../../../etc",
		"a/absescap": "/../../etc",
		"loop1":      "loop2",
		"loop2":      "loop1",
		"dangling":   "/nowhere",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		subPath, want, wantErr string
	}{
		{subPath: "a/b", want: "a/b"},
		{subPath: "./a//b/", want: "a/b"},
		{subPath: "abs", want: "a/b"},
		{subPath: "rel", want: "a/b"},
		{subPath: "a/up", want: "etc"},
		{subPath: "escape", want: "etc"},     // .. stops at the image's root
		{subPath: "a/absescap", want: "etc"}, // so does /..
		{subPath: "missing", wantErr: "no such file"},
		{subPath: "dangling", wantErr: "no such file"},
		{subPath: "loop1", wantErr: "too many levels"},
	}
	for _, tt := range tests {
		t.Run(tt.subPath, func(t *testing.T) {
			got, err := resolveImageSubPath(root, tt.subPath)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("resolve %q = %q, %v; want an error with %q", tt.subPath, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resolvedRoot, _ := filepath.EvalSymlinks(root)
			if want := filepath.Join(resolvedRoot, tt.want); got != want {
				t.Errorf("resolve %q = %q, want %q", tt.subPath, got, want)
			}
		})
	}
}
