// Package framework starts skiff clusters for tests: in-process (the
// control plane runs in the test binary, for integration tests with
// client-go) or as the built binary (for end-to-end tests with kubectl).
// Both give a Cluster with an admin kubeconfig.
package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-io/skiff/internal/server"
)

// Cluster is a running skiff control plane.
type Cluster struct {
	DataDir    string
	Kubeconfig string
	Port       int
	Config     *rest.Config
	Client     kubernetes.Interface

	cfg  server.Config
	stop func() error // stops the server and waits for it
	cmd  *exec.Cmd    // binary harness only
	kill func()
	bin  string
	args []string
	// started is when the binary was last started.
	started time.Time
	// node is the server's node's name; netns, if set, the network
	// namespace the binary runs in.
	node  string
	netns *NetNode
}

// Option changes the server configuration of an in-process cluster.
type Option func(*server.Config)

// WithEtcd makes the cluster use an external etcd cluster.
func WithEtcd(endpoints []string) Option {
	return func(c *server.Config) { c.EtcdServers = endpoints }
}

// StartInProcess starts the control plane inside the test process on a
// temp data dir and a free loopback port, and waits until /readyz passes.
// It stops in t.Cleanup.
func StartInProcess(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	cfg := server.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.HTTPSPort = FreePort(t)
	cfg.DisableAgent = true
	for _, o := range opts {
		o(&cfg)
	}
	c := &Cluster{DataDir: cfg.DataDir, Kubeconfig: filepath.Join(cfg.DataDir, "admin.kubeconfig"), Port: cfg.HTTPSPort, cfg: cfg}
	c.startInProcess(t)
	t.Cleanup(func() { _ = c.Stop() })
	return c
}

func (c *Cluster) startInProcess(t testing.TB) {
	t.Helper()
	cfg := c.cfg
	cfg.Ready = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg) }()
	select {
	case <-cfg.Ready:
	case err := <-done:
		cancel()
		t.Fatalf("server exited before ready: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("server not ready after 60s")
	}
	stopped := false
	c.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	c.connect(t)
}

// Restart stops the server (cleanly) and starts it again on the same data
// dir and port.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	if err := c.Stop(); err != nil {
		t.Fatalf("stopping: %v", err)
	}
	if c.cmd != nil {
		c.startBinary(t)
		return
	}
	c.startInProcess(t)
}

// Stop stops the server and waits until it has exited.
func (c *Cluster) Stop() error {
	if c.stop == nil {
		return nil
	}
	return c.stop()
}

// connect loads the kubeconfig and waits for /readyz.
func (c *Cluster) connect(t testing.TB) {
	t.Helper()
	var cfg *rest.Config
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		cfg, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		if err != nil {
			return false, nil
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return false, err
		}
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	})
	if err != nil {
		t.Fatalf("cluster not ready: %v", err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	c.Config = cfg
	c.Client = kubernetes.NewForConfigOrDie(cfg)
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartBinary starts the built skiff binary as `skiff server
// --disable-agent` on a temp data dir and a free port, and waits until it
// is ready. It stops (SIGTERM) in t.Cleanup.
func StartBinary(t testing.TB, bin string, extraArgs ...string) *Cluster {
	t.Helper()
	dir := t.TempDir()
	port := FreePort(t)
	c := &Cluster{DataDir: dir, Kubeconfig: filepath.Join(dir, "admin.kubeconfig"), Port: port, bin: bin}
	c.args = append([]string{"server", "--disable-agent", "--data-dir", dir, "--https-port", strconv.Itoa(port)}, extraArgs...)
	c.startBinary(t)
	t.Cleanup(func() { _ = c.Stop() })
	return c
}

func (c *Cluster) startBinary(t testing.TB) {
	t.Helper()
	cmd := exec.Command(c.bin, c.args...)
	if c.netns != nil {
		cmd = c.netns.Command(c.bin, c.args...)
	}
	c.started = time.Now()
	logf, err := os.OpenFile(filepath.Join(c.DataDir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", c.bin, err)
	}
	c.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	stopped := false
	c.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("server did not stop within 30s of SIGTERM")
		}
	}
	c.kill = func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	c.connect(t)
}

// Kill9 kills the binary server with SIGKILL (no clean shutdown) and waits
// for it to be gone.
func (c *Cluster) Kill9(t testing.TB) {
	t.Helper()
	if c.kill == nil {
		t.Fatal("Kill9 needs a binary cluster")
	}
	c.kill()
	c.stop = nil
}

// ServerLog returns the binary server's log, for failure messages.
func (c *Cluster) ServerLog() string {
	b, err := os.ReadFile(filepath.Join(c.DataDir, "server.log"))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// WithTokenFile makes the cluster accept the bearer tokens of a static
// token file (--token-auth-file).
func WithTokenFile(path string) Option {
	return func(c *server.Config) { c.TokenAuthFile = path }
}

// WithoutLocalStorage starts the server without the local-path
// provisioner and its default StorageClass (--disable-local-storage).
func WithoutLocalStorage() Option {
	return func(c *server.Config) { c.DisableLocalStorage = true }
}

// WithControllers selects the controllers the server runs (the
// --controllers list); with no names it runs none and no scheduler, so
// that a test can run the controller under test itself.
func WithControllers(names ...string) Option {
	return func(c *server.Config) {
		c.Controllers = names
		if len(names) == 0 {
			c.DisableScheduler = true
		}
	}
}

// PeakRSS is the binary server's peak resident set size (VmHWM) in bytes.
func (c *Cluster) PeakRSS(t testing.TB) int64 {
	t.Helper()
	if c.cmd == nil {
		t.Fatal("PeakRSS needs a binary cluster")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("reading the server's status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in the server's status")
	return 0
}

// WithAuthorization sets the server's --authorization-mode.
func WithAuthorization(mode string) Option {
	return func(c *server.Config) { c.AuthorizationMode = mode }
}
