package containerd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"

	"github.com/skiff-io/skiff/internal/image"
)

// TestImageMount mounts an image pulled into skiff's containerd as the
// kubelet mounts image volumes (image.Mounter, through ctr): by the CRI
// image ID, read-only, kept by containerd while mounted even when the
// image is removed, mounted again after a node restart unmounted it, and
// nothing left (mount, lease, view) after Unmount.
func TestImageMount(t *testing.T) {
	requireRuntime(t)
	dir, err := os.MkdirTemp("/tmp", "ctd")
	if err != nil {
		t.Fatal(err)
	}
	bridge := fmt.Sprintf("skm%d", os.Getpid()%1000000)
	t.Cleanup(func() { cleanupHost(t, dir, bridge) })
	p, err := New(Config{Dir: dir, Bridge: bridge, Log: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatalf("Start returned before ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatalf("containerd not ready after 60s; see %s", filepath.Join(dir, logFile))
	}

	tarball := filepath.Join(dir, "busybox.tar")
	f, err := os.Create(tarball)
	if err != nil {
		t.Fatal(err)
	}
	if err := image.WriteBusybox(f, image.DefaultBusybox); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := image.Import(ctx, p.Socket(), tarball); err != nil {
		t.Fatal(err)
	}
	is, err := remote.NewRemoteImageService(ctx, p.Endpoint(), 30*time.Second, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	waitFor(t, "the CRI plugin knows busybox", 10*time.Second, func() error {
		st, err := is.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: image.BusyboxRefs[0]}, false)
		if err != nil {
			return err
		}
		if st.GetImage() == nil {
			return fmt.Errorf("no image")
		}
		id = st.GetImage().GetId()
		return nil
	})

	ctr := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ctr", append([]string{"--address", p.Socket(), "-n", image.Namespace}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ctr %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	mounted := func(target string) bool {
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 && f[4] == target {
				return true
			}
		}
		return false
	}
	target := filepath.Join(dir, "pods", "uid-1", "volumes", "kubernetes.io~image", "vol")
	if err := os.MkdirAll(target, 0o750); err != nil {
		t.Fatal(err)
	}
	m := image.Mounter{Socket: p.Socket()}
	t.Cleanup(func() { _ = m.Unmount(context.Background(), target) })

	if err := m.Mount(ctx, id, target); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, "bin", "busybox")); err != nil {
		t.Fatalf("the image's files at the target: %v", err)
	}
	if err := os.WriteFile(filepath.Join(target, "new"), nil, 0o644); err == nil {
		t.Error("the mounted image is writable")
	}
	if out := ctr("leases", "ls"); !strings.Contains(out, target) {
		t.Errorf("no lease named after the target:\n%s", out)
	}
	if out := ctr("snapshots", "info", target); !strings.Contains(out, "containerd.io/gc.root") {
		t.Errorf("the view is not a GC root:\n%s", out)
	}

	// Removing the image (every name of it) and collecting garbage
	// keeps what is mounted.
	names := strings.Fields(ctr("images", "ls", "-q"))
	var busybox []string
	for _, n := range names {
		if n == id || strings.Contains(n, "busybox") {
			busybox = append(busybox, n)
		}
	}
	ctr(append([]string{"images", "rm", "--sync"}, busybox...)...)
	if _, err := os.Stat(filepath.Join(target, "bin", "busybox")); err != nil {
		t.Fatalf("the image's files after the image was removed: %v", err)
	}

	// A node restart unmounts everything; Unmount and Mount again work.
	if err := syscall.Unmount(target, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := image.Import(ctx, p.Socket(), tarball); err != nil {
		t.Fatal(err)
	}
	if err := m.Unmount(ctx, target); err != nil {
		t.Fatal(err)
	}
	if err := m.Mount(ctx, image.BusyboxRefs[0], target); err != nil {
		t.Fatal(err)
	}
	if !mounted(target) {
		t.Fatal("not mounted after the second Mount")
	}

	for range 2 { // the second finds nothing to do
		if err := m.Unmount(ctx, target); err != nil {
			t.Fatal(err)
		}
	}
	if mounted(target) {
		t.Error("still mounted after Unmount")
	}
	if out := ctr("leases", "ls"); strings.Contains(out, target) {
		t.Errorf("the lease is left after Unmount:\n%s", out)
	}
	if out := ctr("snapshots", "ls"); strings.Contains(out, target) {
		t.Errorf("the view is left after Unmount:\n%s", out)
	}
	// A target that is gone (a pod directory removed by hand) is fine.
	if err := m.Unmount(ctx, filepath.Join(dir, "gone")); err != nil {
		t.Errorf("Unmount of a missing target: %v", err)
	}
}
