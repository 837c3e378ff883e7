package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"

	"github.com/skiff-io/skiff/internal/image"
)

// requireRuntime skips the test unless it runs as root on a machine with
// containerd, ctr, runc, the CNI plugins and a static busybox.
func requireRuntime(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containerd")
	}
	for _, bin := range []string{"containerd", "ctr", runcBinary} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
	for _, f := range []string{filepath.Join(cniBinDir, "bridge"), filepath.Join(cniBinDir, "host-local"), filepath.Join(cniBinDir, "portmap"), image.DefaultBusybox} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs %s: %v", f, err)
		}
	}
}

// waitFor polls cond every 50ms until it returns nil or timeout passes,
// then fails the test with cond's last error.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCRIPodLifecycle runs skiff's containerd in a temp dir and drives a
// busybox pod through CRI, as the kubelet will: network ready, pause and
// busybox imported, sandbox with an IP from the pod CIDR, a container,
// exec, containerd killed and restarted with the pod surviving, teardown,
// and containerd stopped when the context ends.
func TestCRIPodLifecycle(t *testing.T) {
	requireRuntime(t)
	dir, err := os.MkdirTemp("/tmp", "ctd")
	if err != nil {
		t.Fatal(err)
	}
	bridge := fmt.Sprintf("skt%d", os.Getpid()%1000000)
	t.Cleanup(func() { cleanupHost(t, dir, bridge) })

	p, err := New(Config{Dir: dir, Bridge: bridge, Log: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	const podCIDR = "10.88.7.0/24"
	if err := p.SetPodCIDR(podCIDR); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatalf("Start returned before ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatalf("containerd not ready after 60s; see %s", filepath.Join(dir, logFile))
	}
	rs, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint(p.Endpoint()).
		WithConnectionTimeout(30 * time.Second).WithUseStreaming(true).Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Close(context.Background()) })
	waitFor(t, "NetworkReady", 30*time.Second, func() error {
		st, err := rs.Status(ctx, false)
		if err != nil {
			return err
		}
		for _, c := range st.GetStatus().GetConditions() {
			if c.Type == runtimeapi.NetworkReady && c.Status {
				return nil
			}
		}
		return fmt.Errorf("conditions %v", st.GetStatus().GetConditions())
	})

	if err := image.EnsurePause(ctx, p.Socket(), dir); err != nil {
		t.Fatal(err)
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
	refs, err := image.Import(ctx, p.Socket(), tarball)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(image.BusyboxRefs, refs, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("imported refs (-want +got):\n%s", diff)
	}
	if err := image.EnsurePause(ctx, p.Socket(), dir); err != nil { // a second call finds it
		t.Fatal(err)
	}
	have, err := image.List(ctx, p.Socket())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(have, image.PauseRef) {
		t.Errorf("images %v lack %s", have, image.PauseRef)
	}

	uid := "uid-" + strconv.Itoa(os.Getpid())
	logDir := filepath.Join(dir, "pods", uid)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ns := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "ctdtest", Namespace: "default", Uid: uid},
		Hostname:     "ctdtest",
		LogDirectory: logDir,
		Linux:        &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: ns}},
	}
	start := time.Now()
	podID, err := rs.RunPodSandbox(ctx, podCfg, "")
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	sandboxTime := time.Since(start)
	cid, err := rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"},
		Image:    &runtimeapi.ImageSpec{Image: image.BusyboxRefs[0]},
		Command:  []string{"sleep", "3600"},
		LogPath:  "sleep_0.log",
		Linux:    &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: ns}},
	}, podCfg)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if err := rs.StartContainer(ctx, cid); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	t.Logf("RunPodSandbox → container started: %v (sandbox %v)", time.Since(start), sandboxTime)

	execHostname := func() {
		t.Helper()
		stdout, stderr, err := rs.ExecSync(ctx, cid, []string{"hostname"}, 10*time.Second)
		if err != nil {
			t.Fatalf("ExecSync hostname: %v (stderr %q)", err, stderr)
		}
		if got := string(stdout); got != "ctdtest\n" {
			t.Errorf("hostname = %q, want %q", got, "ctdtest\n")
		}
	}
	execHostname()
	st, err := rs.PodSandboxStatus(ctx, podID, false)
	if err != nil {
		t.Fatal(err)
	}
	ip, err := netip.ParseAddr(st.GetStatus().GetNetwork().GetIp())
	if err != nil {
		t.Fatalf("sandbox IP: %v", err)
	}
	if !netip.MustParsePrefix(podCIDR).Contains(ip) {
		t.Errorf("sandbox IP %s is outside %s", ip, podCIDR)
	}

	// containerd dies: Start restarts it, and the new one adopts the pod.
	oldPID := p.PID()
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "containerd restarted", 60*time.Second, func() error {
		if pid := p.PID(); pid == 0 || pid == oldPID {
			return fmt.Errorf("pid %d", pid)
		}
		_, err := rs.Version(ctx, "v1")
		return err
	})
	execHostname()

	if err := rs.StopContainer(ctx, cid, 0); err != nil {
		t.Errorf("StopContainer: %v", err)
	}
	if err := rs.StopPodSandbox(ctx, podID); err != nil {
		t.Errorf("StopPodSandbox: %v", err)
	}
	if err := rs.RemovePodSandbox(ctx, podID); err != nil {
		t.Errorf("RemovePodSandbox: %v", err)
	}
	pods, err := rs.ListPodSandbox(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 0 {
		t.Errorf("%d sandboxes left after removal", len(pods))
	}

	pid := p.PID()
	cancel()
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err != nil {
			t.Errorf("Start: %v", err)
		}
	case <-time.After(2 * stopGrace):
		t.Fatal("Start did not return after its context ended")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("containerd (pid %d) still exists after Start returned: kill 0 = %v", pid, err)
	}
	if _, err := os.Stat(filepath.Join(dir, pidFile)); !os.IsNotExist(err) {
		t.Errorf("pid file left after a clean stop: %v", err)
	}
}

// cleanupHost removes what a test's containerd leaves on the host.
func cleanupHost(t *testing.T, dir, bridge string) {
	if err := Purge(dir, bridge); err != nil {
		t.Logf("cleanup: %v", err)
	}
}
