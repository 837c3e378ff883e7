package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-io/skiff/internal/image"
)

// Config says where a Process keeps its state and how it runs containerd.
type Config struct {
	// Dir holds everything: config.toml, root, state, the socket, net.d,
	// cni-ipam, runc, certs.d and containerd.log. Keep it short: the socket
	// path <Dir>/containerd.sock must stay under 100 bytes.
	Dir string
	// SandboxImage is the exact name of the pause image; default
	// image.PauseRef. It must be imported before the first pod (see
	// image.EnsurePause), or RunPodSandbox tries to pull it.
	SandboxImage string
	// Bridge is the Linux bridge pods attach to; default "skiff0".
	Bridge string
	// MTU is the pods' links' MTU (the pod network's: a VXLAN overlay's
	// is smaller than the node's link's); 0 leaves the CNI default.
	MTU int
	// Binary is the containerd executable; default "containerd" from PATH.
	Binary string
	// Log receives skiff's messages about containerd (containerd's own log
	// goes to <Dir>/containerd.log); default slog.Default().
	Log *slog.Logger
}

// Timing of supervision.
const (
	stopGrace     = 10 * time.Second // SIGTERM → SIGKILL
	minBackoff    = time.Second      // first restart delay
	maxBackoff    = 30 * time.Second // restart delay cap
	stableRun     = time.Minute      // a run this long resets the back-off
	probeInterval = 100 * time.Millisecond
	probeTimeout  = 2 * time.Second
	maxLogSize    = 16 << 20 // containerd.log is rotated (once) beyond this at start
	maxBridgeName = 15       // IFNAMSIZ - 1
	defaultBridge = "skiff0"
	defaultBinary = "containerd"
)

// Process is skiff's own containerd: started, watched and restarted by the
// node agent, with its whole state under Config.Dir so that it coexists
// with any other containerd on the host.
//
// Containers and their shims outlive containerd: stopping or restarting
// it leaves pods running, and the next containerd on the same Dir adopts
// them.
type Process struct {
	cfg     Config
	log     *slog.Logger
	started atomic.Bool

	ready     chan struct{}
	readyOnce sync.Once

	mu  sync.Mutex
	pid int // the running containerd, 0 when none
}

// New validates cfg, creates Dir and writes <Dir>/config.toml. It does not
// start containerd and does not write the CNI conflist (SetPodCIDR does,
// once the node's pod CIDR is known).
func New(cfg Config) (*Process, error) {
	if cfg.Dir == "" {
		return nil, errors.New("containerd: Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("containerd: Dir: %w", err)
	}
	cfg.Dir = dir
	if s := filepath.Join(dir, socketFile); len(s) >= maxSocketPath {
		return nil, fmt.Errorf("containerd: socket path %s is %d bytes, the limit is %d: choose a shorter data directory", s, len(s), maxSocketPath-1)
	}
	if strings.ContainsAny(dir, "\"\\\n\r\t") {
		return nil, fmt.Errorf("containerd: Dir %q: quotes, backslashes and control characters are not supported", dir)
	}
	if cfg.SandboxImage == "" {
		cfg.SandboxImage = image.PauseRef
	}
	if cfg.Bridge == "" {
		cfg.Bridge = defaultBridge
	}
	if len(cfg.Bridge) > maxBridgeName || strings.ContainsAny(cfg.Bridge, "/ \t\n:") {
		return nil, fmt.Errorf("containerd: bridge name %q: want at most %d characters, no '/', ':' or spaces", cfg.Bridge, maxBridgeName)
	}
	if cfg.Binary == "" {
		cfg.Binary = defaultBinary
	}
	bin, err := exec.LookPath(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("containerd: %w (Debian: apt-get install containerd runc containernetworking-plugins)", err)
	}
	cfg.Binary = bin
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	for _, d := range []string{dir, filepath.Join(dir, cniConfDir), filepath.Join(dir, certsDir)} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, configFile), []byte(renderConfig(dir, cfg.SandboxImage)), 0o644); err != nil {
		return nil, fmt.Errorf("containerd: write config: %w", err)
	}
	return &Process{cfg: cfg, log: cfg.Log.With("component", "containerd"), ready: make(chan struct{})}, nil
}

// Endpoint returns the CRI endpoint, "unix://<Dir>/containerd.sock".
func (p *Process) Endpoint() string { return "unix://" + p.Socket() }

// Socket returns the path of containerd's gRPC socket.
func (p *Process) Socket() string { return filepath.Join(p.cfg.Dir, socketFile) }

// Ready is closed once containerd first answers the CRI Version RPC. It
// stays closed across restarts: callers' CRI clients reconnect by
// themselves while containerd restarts.
func (p *Process) Ready() <-chan struct{} { return p.ready }

// Start runs containerd and blocks until ctx ends. When containerd exits
// by itself, Start restarts it after a back-off (1s doubling to 30s,
// reset after a minute of running). When ctx ends, it sends SIGTERM,
// waits up to 10s, sends SIGKILL, and returns once containerd has exited.
// Containers and shims keep running.
//
// Before the first start it takes over from a containerd of an earlier
// run on the same Dir (one recorded in <Dir>/containerd.pid, orphaned by
// a crash of its node agent) by stopping it, and removes a stale socket
// file. It returns an error, without starting anything, if another
// process serves the socket, or when called twice.
func (p *Process) Start(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("containerd: Start called twice")
	}
	if err := p.clearStale(); err != nil {
		return err
	}
	backoff := minBackoff
	for {
		began := time.Now()
		stopped, err := p.run(ctx)
		if stopped {
			return nil
		}
		if time.Since(began) >= stableRun {
			backoff = minBackoff
		}
		p.log.Error("containerd exited; restarting", "err", err, "in", backoff, "log", filepath.Join(p.cfg.Dir, logFile))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// run starts containerd once and waits for it to exit (stopped=false, with
// the reason) or for ctx to end (stopped=true, after stopping it).
func (p *Process) run(ctx context.Context) (stopped bool, err error) {
	if ctx.Err() != nil {
		return true, nil
	}
	logf, err := openLog(filepath.Join(p.cfg.Dir, logFile))
	if err != nil {
		return false, err
	}
	defer logf.Close()
	cmd := exec.Command(p.cfg.Binary, "--config", filepath.Join(p.cfg.Dir, configFile))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a terminal's Ctrl-C reaches skiff, which then
	// stops containerd in order, and not containerd directly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("start %s: %w", p.cfg.Binary, err)
	}
	p.setPID(cmd.Process.Pid)
	defer p.setPID(0)
	pidPath := filepath.Join(p.cfg.Dir, pidFile)
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		p.log.Warn("cannot record containerd's pid", "err", err)
	}
	p.log.Info("containerd started", "pid", cmd.Process.Pid, "socket", p.Socket())

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	probeCtx, cancelProbe := context.WithCancel(ctx)
	var probing sync.WaitGroup
	probing.Go(func() { p.probe(probeCtx) })
	defer func() {
		cancelProbe()
		probing.Wait()
	}()

	select {
	case err := <-exited:
		if err == nil {
			err = errors.New("exit status 0")
		}
		return false, err
	case <-ctx.Done():
	}
	p.log.Info("stopping containerd", "pid", cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err = <-exited:
	case <-time.After(stopGrace):
		p.log.Warn("containerd ignored SIGTERM; killing it", "pid", cmd.Process.Pid, "after", stopGrace)
		_ = cmd.Process.Kill()
		err = <-exited
	}
	_ = os.Remove(pidPath)
	p.log.Info("containerd stopped", "pid", cmd.Process.Pid, "exit", err)
	return true, nil
}

// probe polls the CRI Version RPC until it answers, then closes Ready.
func (p *Process) probe(ctx context.Context) {
	select {
	case <-p.ready:
		return
	default:
	}
	conn, err := grpc.NewClient("unix://"+p.Socket(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority("localhost"))
	if err != nil {
		p.log.Error("cannot probe containerd", "err", err)
		return
	}
	defer conn.Close()
	client := runtimeapi.NewRuntimeServiceClient(conn)
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		callCtx, cancel := context.WithTimeout(ctx, probeTimeout)
		v, err := client.Version(callCtx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			p.log.Info("containerd ready", "runtime", v.RuntimeName, "version", v.RuntimeVersion, "criVersion", v.RuntimeApiVersion)
			p.readyOnce.Do(func() { close(p.ready) })
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// clearStale stops a containerd left running on Dir by an earlier,
// crashed node agent, and removes a socket file nobody serves.
func (p *Process) clearStale() error {
	pidPath := filepath.Join(p.cfg.Dir, pidFile)
	if b, err := os.ReadFile(pidPath); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p.isOurs(pid) {
			p.log.Warn("stopping containerd left by an earlier run", "pid", pid)
			_ = syscall.Kill(pid, syscall.SIGTERM)
			if !p.waitGone(pid, stopGrace) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				p.waitGone(pid, stopGrace)
			}
		}
		_ = os.Remove(pidPath)
	}
	sock := p.Socket()
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("containerd: another process serves %s; is another skiff agent running on %s?", sock, p.cfg.Dir)
	}
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("containerd: remove stale socket: %w", err)
	}
	return nil
}

// isOurs reports whether pid is a live containerd started on this Dir's
// config (a zombie or a reused pid is not).
func (p *Process) isOurs(pid int) bool {
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	return bytes.Contains(cmdline, []byte(filepath.Join(p.cfg.Dir, configFile)+"\x00"))
}

// waitGone polls until pid is no longer our containerd, up to timeout.
func (p *Process) waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for p.isOurs(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(probeInterval)
	}
	return true
}

func (p *Process) setPID(pid int) {
	p.mu.Lock()
	p.pid = pid
	p.mu.Unlock()
}

// PID returns the process ID of the running containerd, 0 when none runs.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// openLog opens containerd's log for appending, first moving a log grown
// beyond maxLogSize to <path>.1 (replacing an older one).
func openLog(path string) (*os.File, error) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > maxLogSize {
		_ = os.Rename(path, path+".1")
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("containerd log: %w", err)
	}
	return f, nil
}
