package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-io/skiff/internal/chaos"
)

// ChaosConfig is `skiff bench chaos`: the reliability run of package
// chaos on a server this command starts as a child process, kills with
// SIGKILL and restarts.
type ChaosConfig struct {
	chaos.Config
	// Binary is the skiff binary the server runs; "" is this one.
	Binary string
	// DataDir is where the server keeps its state; empty means a temp dir,
	// removed afterwards unless the run found a violation.
	DataDir string
}

// Chaos runs `skiff server --disable-agent` as a child process, runs the
// chaos workload against it through cfg.Cycles kill -9 restarts, and
// prints the report. It fails when a check found a violation.
func Chaos(ctx context.Context, cfg ChaosConfig, out io.Writer) error {
	bin := cfg.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		bin = exe
	}
	dir := cfg.DataDir
	keep := dir != ""
	if dir == "" {
		d, err := os.MkdirTemp("", "skiff-chaos-")
		if err != nil {
			return err
		}
		dir = d
	}
	defer func() {
		if !keep {
			os.RemoveAll(dir)
		}
	}()
	srv, err := startChild(ctx, bin, dir)
	if err != nil {
		keep = true
		return fmt.Errorf("%w (server log: %s)", err, srv.logPath())
	}
	defer srv.stop()
	if cfg.ArtifactDir == "" {
		cfg.ArtifactDir = dir
	}
	cfg.Logf = func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	rep, err := chaos.Run(ctx, srv.rc, srv, cfg.Config)
	if err != nil {
		keep = true
		return fmt.Errorf("%w (server log: %s)", err, srv.logPath())
	}
	if _, err := rep.WriteTo(out); err != nil {
		return err
	}
	if len(rep.Violations) > 0 {
		keep = true
		return fmt.Errorf("%d violations (seed %d); the server's data and log are in %s", len(rep.Violations), rep.Seed, dir)
	}
	return nil
}

// child is a `skiff server` process on a data dir and port that survive
// its restarts.
type child struct {
	ctx    context.Context
	bin    string
	dir    string
	port   int
	rc     *rest.Config
	cmd    *exec.Cmd
	exited chan error
}

func startChild(ctx context.Context, bin, dir string) (*child, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	c := &child{ctx: ctx, bin: bin, dir: dir, port: port}
	return c, c.start()
}

func (c *child) logPath() string { return filepath.Join(c.dir, "server.log") }

// start starts the process and waits until it is ready.
func (c *child) start() error {
	logf, err := os.OpenFile(c.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.bin, "server", "--disable-agent", "--data-dir", c.dir, "--https-port", strconv.Itoa(c.port))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", c.bin, err)
	}
	c.cmd, c.exited = cmd, make(chan error, 1)
	go func() { c.exited <- cmd.Wait(); logf.Close() }()
	return c.waitReady()
}

// waitReady polls /readyz until it answers ok, for at most a minute.
func (c *child) waitReady() error {
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-c.exited:
			c.exited <- err
			return fmt.Errorf("server exited before it was ready: %v", err)
		default:
		}
		if c.ready() {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("server not ready within a minute")
		}
		select {
		case <-c.ctx.Done():
			return c.ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *child) ready() bool {
	if c.rc == nil {
		rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(c.dir, "admin.kubeconfig"))
		if err != nil {
			return false
		}
		c.rc = rc
	}
	cs, err := kubernetes.NewForConfig(c.rc)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
	defer cancel()
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err == nil && string(body) == "ok"
}

// Kill9 kills the process with SIGKILL and waits for it to be gone.
func (c *child) Kill9() error {
	if err := c.cmd.Process.Kill(); err != nil {
		return err
	}
	<-c.exited
	return nil
}

// Restart starts the server again on the same data dir and port.
func (c *child) Restart() error { return c.start() }

// stop ends the process with SIGTERM, or SIGKILL after 30 s.
func (c *child) stop() {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}
