package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDrainerTurnsAway(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "served") })
	for _, tc := range []struct {
		name       string
		retryAfter bool
		code       int
		header     string
		reason     metav1.StatusReason
	}{
		{"default", false, http.StatusServiceUnavailable, "1", metav1.StatusReasonServiceUnavailable},
		{"send-retry-after", true, http.StatusTooManyRequests, "5", metav1.StatusReasonTooManyRequests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDrainer(next, tc.retryAfter)
			get := func(path string) *httptest.ResponseRecorder {
				w := httptest.NewRecorder()
				d.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
				return w
			}
			if w := get("/api/v1/namespaces"); w.Code != http.StatusOK || w.Header().Get("Connection") != "" {
				t.Fatalf("before close: %d %v", w.Code, w.Header())
			}
			d.close()
			for _, path := range []string{"/api/v1/namespaces", "/api/v1/configmaps?watch=1", "/apis/apps/v1/deployments"} {
				w := get(path)
				if w.Code != tc.code || w.Header().Get("Retry-After") != tc.header || w.Header().Get("Connection") != "close" {
					t.Fatalf("%s after close: %d, headers %v; want %d, Retry-After %s, Connection: close", path, w.Code, w.Header(), tc.code, tc.header)
				}
				var st metav1.Status
				if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || st.Kind != "Status" || st.Reason != tc.reason || st.Details == nil || st.Details.RetryAfterSeconds == 0 {
					t.Fatalf("%s after close: body %s (%v)", path, w.Body, err)
				}
			}
			for _, path := range []string{"/readyz", "/livez/ping", "/healthz", "/metrics"} {
				if w := get(path); w.Code != http.StatusOK || w.Header().Get("Connection") != "close" {
					t.Fatalf("%s after close: %d %v, want served with Connection: close", path, w.Code, w.Header())
				}
			}
		})
	}
}

func TestDrainerWaitsForRequestsInFlight(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	d := newDrainer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}), false)
	for _, path := range []string{"/api/v1/namespaces", "/api/v1/configmaps?watch=true"} {
		go d.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
		<-entered
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := d.wait(ctx); err == nil {
		t.Fatal("wait returned with a request in flight")
	}
	close(release)
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The watch is not waited for: it ends when the API server drains.
	if err := d.wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// fakeAPI stands for the API server: GETs answer after a little work,
// watches stream until Shutdown, /readyz fails after ShutdownInitiated.
type fakeAPI struct {
	initiated, ended           chan struct{}
	initiateOnce, shutdownOnce sync.Once
}

func newFakeAPI() *fakeAPI {
	return &fakeAPI{initiated: make(chan struct{}), ended: make(chan struct{})}
}

func (f *fakeAPI) ShutdownInitiated() { f.initiateOnce.Do(func() { close(f.initiated) }) }
func (f *fakeAPI) Shutdown() {
	f.ShutdownInitiated()
	f.shutdownOnce.Do(func() { close(f.ended) })
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/readyz":
		select {
		case <-f.initiated:
			http.Error(w, "[-]shutdown failed", http.StatusInternalServerError)
		default:
			_, _ = io.WriteString(w, "ok")
		}
	case r.URL.Query().Get("watch") != "":
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "{}\n")
		http.NewResponseController(w).Flush()
		select {
		case <-f.ended:
		case <-r.Context().Done():
		}
	default:
		time.Sleep(200 * time.Microsecond)
		_, _ = io.WriteString(w, `{"kind":"Namespace"}`)
	}
}

// TestShutdownSequence runs the shutdown of an HTTP server under kept-
// alive clients: no request sent on a connection may go unanswered.
func TestShutdownSequence(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no delay", Config{}},
		{"delay", Config{ShutdownDelayDuration: 300 * time.Millisecond}},
		{"send-retry-after", Config{ShutdownDelayDuration: 100 * time.Millisecond, ShutdownSendRetryAfter: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI()
			d := newDrainer(api, tc.cfg.ShutdownSendRetryAfter)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: d, ConnState: d.connState}
			serveErr := make(chan error, 1)
			go func() { serveErr <- srv.Serve(ln) }()
			addr := ln.Addr().String()
			h := &httpLifecycle{api: api, srv: srv, ln: ln, drainer: d, serveErr: serveErr, cfg: tc.cfg, log: slog.New(slog.DiscardHandler)}

			watch, err := http.Get("http://" + addr + "/api/v1/configmaps?watch=1")
			if err != nil {
				t.Fatal(err)
			}
			watchEnded := make(chan error, 1)
			go func() { _, err := io.Copy(io.Discard, watch.Body); watchEnded <- err }()

			var mu sync.Mutex
			var failures []string
			codes := map[int]int{}
			var notReady bool
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := getLoop(ctx, addr, func(code int, closed bool) {
						mu.Lock()
						defer mu.Unlock()
						codes[code]++
						if code != http.StatusOK && !closed {
							failures = append(failures, fmt.Sprintf("%d without Connection: close", code))
						}
					})
					if err != nil {
						mu.Lock()
						failures = append(failures, err.Error())
						mu.Unlock()
					}
				}()
			}
			if tc.cfg.ShutdownDelayDuration > 0 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
					for ctx.Err() == nil {
						resp, err := c.Get("http://" + addr + "/readyz")
						if err != nil {
							return
						}
						resp.Body.Close()
						if resp.StatusCode == http.StatusInternalServerError {
							mu.Lock()
							notReady = true
							mu.Unlock()
							return
						}
						time.Sleep(5 * time.Millisecond)
					}
				}()
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				mu.Lock()
				n := codes[http.StatusOK]
				mu.Unlock()
				if n > 100 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the clients got no answers")
				}
				time.Sleep(5 * time.Millisecond)
			}

			h.shutdown(true)
			cancel()
			wg.Wait()
			t.Logf("answers %v", codes)
			for _, f := range failures {
				t.Error(f)
			}
			if err := <-watchEnded; err != nil {
				t.Errorf("watch: %v, want the end of its stream", err)
			}
			if want := map[bool]int{false: http.StatusServiceUnavailable, true: http.StatusTooManyRequests}[tc.cfg.ShutdownSendRetryAfter]; codes[want] == 0 {
				t.Errorf("no request turned away with %d", want)
			}
			if tc.cfg.ShutdownDelayDuration > 0 && !notReady {
				t.Error("/readyz did not fail on a new connection before the listener closed")
			}
			// Connections closed idle by http.Server.Shutdown report
			// their closing a moment later.
			for deadline := time.Now().Add(5 * time.Second); d.conns.Load() != 0; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Errorf("%d connections left open", d.conns.Load())
					break
				}
			}
		})
	}
}

// getLoop sends GETs one after another on kept-alive HTTP/1.1
// connections, without retries, until ctx ends or a new connection is
// refused. It returns the first error on a connection it had sent a
// request on.
func getLoop(ctx context.Context, addr string, answered func(code int, closed bool)) error {
	const req = "GET /api/v1/namespaces/default HTTP/1.1\r\nHost: skiff\r\n\r\n"
	var conn net.Conn
	var br *bufio.Reader
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for n := 0; ctx.Err() == nil; n++ {
		if conn == nil {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return nil // refused: the listener is closed
			}
			conn, br, n = c, bufio.NewReader(c), 0
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err := io.WriteString(conn, req)
		if n == 0 && errors.Is(err, syscall.ECONNRESET) {
			return nil // reset before the request left: see below
		}
		if err != nil {
			return fmt.Errorf("request %d on its connection: writing: %w", n, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if n == 0 && errors.Is(err, syscall.ECONNRESET) {
			// Dialled as the listener closed: the kernel had queued the
			// connection, the server never accepted it, and its close
			// reset it, before the write or after it. The request was
			// never read: as good as refused.
			return nil
		}
		if err != nil {
			return fmt.Errorf("request %d on its connection: reading the answer: %w", n, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("request %d on its connection: reading the body: %w", n, err)
		}
		answered(resp.StatusCode, resp.Close || strings.EqualFold(resp.Header.Get("Connection"), "close"))
		if resp.Close {
			conn.Close()
			conn = nil
		}
	}
	return nil
}
