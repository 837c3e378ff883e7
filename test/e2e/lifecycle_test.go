package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-io/skiff/test/framework"
)

// lifecycleBin is the binary the lifecycle tests run: skiffBin, or
// $SKIFF_LIFECYCLE_BIN to check what they guard against another build.
func lifecycleBin() string {
	if b := os.Getenv("SKIFF_LIFECYCLE_BIN"); b != "" {
		return b
	}
	return skiffBin
}

// TestDataDirLock: a second server (or an agent) on a data dir in use
// exits at once naming the first one's pid, and a lock left by a killed
// server does not block the next.
func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	first := startServerProc(t, dir)
	first.waitReady(t)

	second := startServerProc(t, dir)
	if !second.waitExit(10 * time.Second) {
		t.Fatalf("a second server on %s still runs after 10s:\n%s", dir, second.output())
	}
	if second.exitCode() == 0 {
		t.Fatalf("the second server exited 0:\n%s", second.output())
	}
	want := fmt.Sprintf("data dir %s is in use by pid %d", dir, first.cmd.Process.Pid)
	mustContain(t, "the second server's output", second.output(), want)
	// An agent's data dir is one process's too.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, lifecycleBin(), "agent", "--data-dir", dir,
		"--server", "https://127.0.0.1:"+strconv.Itoa(first.port), "--token", "unused").CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("an agent on the server's data dir: %v, want a prompt failure:\n%s", err, out)
	}
	mustContain(t, "the agent's output", string(out), want)
	first.waitReady(t) // and the first one is unharmed

	first.kill9()
	third := startServerProc(t, dir)
	third.waitReady(t)
	if err := third.stop(30 * time.Second); err != nil {
		t.Fatalf("stopping: %v\n%s", err, third.output())
	}
}

// TestSignalDuringStartUp: SIGTERM ends a server wherever its start-up
// is, even blocked on a lock of etcd's that another process holds; a
// second signal ends a server at once, even in its shutdown delay.
func TestSignalDuringStartUp(t *testing.T) {
	t.Run("as it starts", func(t *testing.T) {
		dir := t.TempDir()
		p := startServerProc(t, dir)
		// Once it holds the data dir's lock, it is past flag parsing and
		// into the server's start-up.
		framework.Eventually(t, 30*time.Second, func() bool {
			b, _ := os.ReadFile(filepath.Join(dir, "skiff.lock"))
			return strings.TrimSpace(string(b)) == strconv.Itoa(p.cmd.Process.Pid) || p.exited()
		})
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if !p.waitExit(20 * time.Second) {
			t.Fatalf("still running 20s after SIGTERM:\n%s", p.output())
		}
		if p.exitCode() != 0 {
			t.Fatalf("exit status %d after SIGTERM during start-up, want 0:\n%s", p.exitCode(), p.output())
		}
	})

	t.Run("etcd database locked by another process", func(t *testing.T) {
		dir := t.TempDir()
		p := startServerProc(t, dir)
		p.waitReady(t)
		if err := p.stop(30 * time.Second); err != nil {
			t.Fatalf("stopping: %v\n%s", err, p.output())
		}
		// What etcdutl or a stray etcd would do: hold bbolt's lock.
		db := filepath.Join(dir, "etcd", "member", "snap", "db")
		f, err := os.OpenFile(db, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			t.Fatal(err)
		}
		p = startServerProc(t, dir)
		framework.Eventually(t, 30*time.Second, func() bool { return p.hasOpen(db) || p.exited() })
		if p.exited() {
			t.Fatalf("exited before opening etcd's database:\n%s", p.output())
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if !p.waitExit(20 * time.Second) {
			t.Fatalf("still running 20s after SIGTERM, waiting for etcd's database:\n%s", p.output())
		}
		if p.exitCode() != 0 {
			t.Fatalf("exit status %d after SIGTERM during start-up, want 0:\n%s", p.exitCode(), p.output())
		}
	})

	t.Run("second signal", func(t *testing.T) {
		p := startServerProc(t, t.TempDir(), "--shutdown-delay-duration=5m")
		p.waitReady(t)
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 10*time.Second, func() bool {
			code, body := p.get("/readyz?verbose")
			return code == http.StatusInternalServerError && strings.Contains(body, "[-]shutdown failed")
		})
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if !p.waitExit(10 * time.Second) {
			t.Fatalf("still running 10s after a second SIGTERM:\n%s", p.output())
		}
		if p.exitCode() == 0 {
			t.Fatalf("exited 0 on a second signal, want non-zero:\n%s", p.output())
		}
	})
}

// TestGracefulShutdown stops a server under a stream of GETs on
// kept-alive connections (HTTP/1.1 and HTTP/2) and open watches, and
// checks upstream's sequence: /readyz fails with "shutdown" first while
// requests are still served (with a delay), then requests get turned
// away with Retry-After and Connection: close, and no request sent on a
// connection is answered with a reset; the watches end as streams end,
// and the server exits 0.
func TestGracefulShutdown(t *testing.T) {
	for _, tc := range []struct {
		name       string
		flags      []string
		delay      bool
		turnedAway int
		retryAfter string
	}{
		{name: "no delay", turnedAway: http.StatusServiceUnavailable, retryAfter: "1"},
		{name: "delay", flags: []string{"--shutdown-delay-duration=2s"}, delay: true, turnedAway: http.StatusServiceUnavailable, retryAfter: "1"},
		{name: "delay and send-retry-after", flags: []string{"--shutdown-delay-duration=1s", "--shutdown-send-retry-after"}, delay: true, turnedAway: http.StatusTooManyRequests, retryAfter: "5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := framework.StartBinary(t, lifecycleBin(), tc.flags...)
			tlsCfg, err := rest.TLSConfigFor(c.Config)
			if err != nil {
				t.Fatal(err)
			}
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port))
			h1 := tlsCfg.Clone()
			h1.NextProtos = []string{"http/1.1"}
			h2, err := rest.TransportFor(c.Config)
			if err != nil {
				t.Fatal(err)
			}
			rec := &shutdownRecord{}

			// Watches on both protocols: each must end with its stream.
			watchPath := "/api/v1/namespaces/default/configmaps?watch=1"
			watchEnded := make(chan error, 2)
			for _, rt := range []http.RoundTripper{&http.Transport{TLSClientConfig: h1}, h2} {
				resp, err := (&http.Client{Transport: rt}).Get("https://" + addr + watchPath)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("watch: %v %v", resp, err)
				}
				go func() {
					_, err := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					watchEnded <- err
				}()
			}

			ctx, stopClients := context.WithCancel(context.Background())
			defer stopClients()
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() { defer wg.Done(); rec.getOverHTTP1(ctx, addr, h1) }()
			}
			wg.Add(1)
			go func() { defer wg.Done(); rec.getOverHTTP2(ctx, "https://"+addr, h2) }()
			wg.Add(1)
			go func() { defer wg.Done(); rec.probe(ctx, addr, h1) }()
			// Let the clients get going on their connections.
			framework.Eventually(t, 10*time.Second, func() bool { return rec.answers(http.StatusOK) > 20 })

			stopped := make(chan error, 1)
			sigterm := time.Now()
			go func() { stopped <- c.Stop() }()
			var exitErr error
			select {
			case exitErr = <-stopped:
			case <-time.After(45 * time.Second):
				t.Fatal("the server did not exit within 45s of SIGTERM")
			}
			took := time.Since(sigterm)
			stopClients()
			wg.Wait()
			t.Logf("exited %v after SIGTERM; %s", took.Round(time.Millisecond), rec)

			if exitErr != nil {
				t.Errorf("exit: %v, want status 0", exitErr)
			}
			for _, f := range rec.failures {
				t.Errorf("client: %s", f)
			}
			for range 2 {
				select {
				case err := <-watchEnded:
					if err != nil {
						t.Errorf("watch ended with %v, want the end of its stream", err)
					}
				case <-time.After(5 * time.Second):
					t.Errorf("a watch still open 5s after the server exited")
				}
			}
			if rec.refusedAt.IsZero() {
				t.Errorf("no client saw the listener closed")
			}
			if n := rec.answers(tc.turnedAway); n == 0 {
				t.Errorf("no request was turned away with %d", tc.turnedAway)
			}
			for _, ra := range rec.retryAfter {
				if ra != tc.retryAfter {
					t.Errorf("turned away with Retry-After %q, want %q", ra, tc.retryAfter)
				}
			}
			if rec.turnedAwayKeptAlive > 0 {
				t.Errorf("%d answers turned away without Connection: close", rec.turnedAwayKeptAlive)
			}
			if tc.delay {
				if rec.notReadyAt.IsZero() {
					t.Fatalf("/readyz never failed with \"shutdown\" on a new connection: it did not fail before the listener closed")
				}
				if !rec.livezOK {
					t.Errorf("/livez was not ok while /readyz failed")
				}
				if !rec.lastOK.After(rec.notReadyAt) {
					t.Errorf("no request was served after /readyz failed (the delay serves them)")
				}
			}
		})
	}
}

// shutdownRecord is what the clients of TestGracefulShutdown saw.
type shutdownRecord struct {
	mu                  sync.Mutex
	codes               map[int]int
	retryAfter          []string
	turnedAwayKeptAlive int
	failures            []string
	lastOK              time.Time
	notReadyAt          time.Time // /readyz first failed with "shutdown", on a new connection
	livezOK             bool
	refusedAt           time.Time // a new connection was first refused
}

func (r *shutdownRecord) answer(resp *http.Response) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.codes == nil {
		r.codes = map[int]int{}
	}
	r.codes[resp.StatusCode]++
	switch resp.StatusCode {
	case http.StatusOK:
		r.lastOK = time.Now()
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		r.retryAfter = append(r.retryAfter, resp.Header.Get("Retry-After"))
		if resp.ProtoMajor == 1 && !resp.Close {
			r.turnedAwayKeptAlive++
		}
	}
}

func (r *shutdownRecord) answers(code int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.codes[code]
}

func (r *shutdownRecord) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (r *shutdownRecord) refused() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refusedAt.IsZero() {
		r.refusedAt = time.Now()
	}
}

func (r *shutdownRecord) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("answers by code %v, /readyz failed at %v, listener closed at %v, %d client failures",
		r.codes, r.notReadyAt.Format("15:04:05.000"), r.refusedAt.Format("15:04:05.000"), len(r.failures))
}

// getOverHTTP1 sends GETs one after another on kept-alive HTTP/1.1
// connections, as written here, without any retry: an error reading an
// answer is what a client sees. It opens a new connection when an answer
// says Connection: close, and stops when a new connection is refused.
func (r *shutdownRecord) getOverHTTP1(ctx context.Context, addr string, cfg *tls.Config) {
	const req = "GET /api/v1/namespaces/default HTTP/1.1\r\nHost: skiff\r\nAccept: application/json\r\n\r\n"
	var conn *tls.Conn
	var br *bufio.Reader
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for n := 0; ctx.Err() == nil; n++ {
		if conn == nil {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
			if err != nil {
				// Refused, or reset in the handshake when the listener
				// closed with the connection in its backlog: no request
				// was sent on it.
				r.refused()
				return
			}
			conn, br, n = c, bufio.NewReader(c), 0
		}
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(conn, req); err != nil {
			r.fail("HTTP/1.1 request %d on its connection: writing: %v", n, err)
			return
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			r.fail("HTTP/1.1 request %d on its connection: reading the answer: %v", n, err)
			return
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			r.fail("HTTP/1.1 request %d on its connection: reading the body: %v", n, err)
			return
		}
		r.answer(resp)
		if resp.Close {
			conn.Close()
			conn = nil
		}
	}
}

// getOverHTTP2 sends GETs one after another through client-go's HTTP/2
// transport.
func (r *shutdownRecord) getOverHTTP2(ctx context.Context, url string, rt http.RoundTripper) {
	client := &http.Client{Transport: rt, Timeout: 30 * time.Second}
	for ctx.Err() == nil {
		// A request is sent once its headers are written on a connection;
		// before that, an error is the connection's (refused, or reset
		// in the accept queue of a listener that closed).
		var sent atomic.Bool
		trace := &httptrace.ClientTrace{WroteHeaders: func() { sent.Store(true) }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, url+"/api/v1/namespaces/default", nil)
		if err != nil {
			r.fail("%v", err)
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			if !sent.Load() {
				r.refused()
				return
			}
			r.fail("HTTP/2 request: %v", err)
			return
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			r.fail("HTTP/2 request: reading the body: %v", err)
			return
		}
		r.answer(resp)
	}
}

// probe asks /readyz and /livez on a new connection each time, so that
// every answer proves the listener was still accepting.
func (r *shutdownRecord) probe(ctx context.Context, addr string, cfg *tls.Config) {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	get := func(path string) (int, string, error) {
		resp, err := client.Get("https://" + addr + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	for ctx.Err() == nil {
		code, body, err := get("/readyz?verbose")
		if err != nil {
			r.refused()
			return
		}
		if code == http.StatusInternalServerError && strings.Contains(body, "[-]shutdown failed") {
			at := time.Now()
			livez, _, err := get("/livez")
			if err != nil {
				r.refused()
				return
			}
			r.mu.Lock()
			if r.notReadyAt.IsZero() {
				r.notReadyAt, r.livezOK = at, livez == http.StatusOK
			}
			r.mu.Unlock()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serverProc is a `skiff server --disable-agent` process the test starts
// and watches itself (its pid, its exit, its output).
type serverProc struct {
	cmd     *exec.Cmd
	dir     string
	port    int
	done    chan struct{}
	waitErr error
	mu      sync.Mutex
	out     bytes.Buffer
}

func startServerProc(t *testing.T, dir string, args ...string) *serverProc {
	t.Helper()
	p := &serverProc{dir: dir, port: framework.FreePort(t), done: make(chan struct{})}
	p.cmd = exec.Command(lifecycleBin(), append([]string{"server", "--disable-agent", "--data-dir", dir, "--https-port", strconv.Itoa(p.port)}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = (*procOutput)(p), (*procOutput)(p)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill9()
		if t.Failed() {
			t.Logf("server (pid %d) output:\n%s", p.cmd.Process.Pid, p.output())
		}
	})
	return p
}

type procOutput serverProc

func (o *procOutput) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.out.Write(b)
}

func (p *serverProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *serverProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *serverProc) waitExit(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (p *serverProc) exitCode() int { return p.cmd.ProcessState.ExitCode() }

func (p *serverProc) kill9() {
	if !p.exited() {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *serverProc) stop(d time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if !p.waitExit(d) {
		return fmt.Errorf("still running %v after SIGTERM", d)
	}
	return p.waitErr
}

// get asks the server path with the admin credentials; 0 when it cannot.
func (p *serverProc) get(path string) (int, string) {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(p.dir, "admin.kubeconfig"))
	if err != nil {
		return 0, ""
	}
	cfg.Host = "https://127.0.0.1:" + strconv.Itoa(p.port)
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return 0, ""
	}
	resp, err := (&http.Client{Transport: rt, Timeout: 5 * time.Second}).Get(cfg.Host + path)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (p *serverProc) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, body := p.get("/readyz"); code == http.StatusOK && body == "ok" {
			return
		}
		if p.exited() {
			t.Fatalf("server exited before ready:\n%s", p.output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready within 60s:\n%s", p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hasOpen reports whether the process has path open.
func (p *serverProc) hasOpen(path string) bool {
	fds := fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid)
	entries, err := os.ReadDir(fds)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join(fds, e.Name())); err == nil && target == path {
			return true
		}
	}
	return false
}
