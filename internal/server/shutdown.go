package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/etcd"
)

// The graceful shutdown of `skiff server`, after upstream's
// k8s.io/apiserver (lifecycle_signals.go), when ctx ends:
//
//	ShutdownInitiated       /readyz fails (check "shutdown"); /livez stays
//	                        ok; every request is still served as before.
//	  --shutdown-delay-duration (skipped if the server never became ready)
//	NotAcceptingNewRequest  new requests, on new or kept-alive connections,
//	                        get 503 (429 with --shutdown-send-retry-after)
//	                        with Retry-After and Connection: close; health
//	                        checks and metrics are still served. Without
//	                        --shutdown-send-retry-after the listener
//	                        closes now (new connections are refused). The
//	                        components beside the API server (controllers,
//	                        scheduler, node agent) and its own informers
//	                        start stopping; open watches end, their streams
//	                        ending as streams end.
//	InFlightRequestsDrained the requests in flight have finished (each is
//	                        bounded by --request-timeout, and so is this
//	                        wait). With --shutdown-send-retry-after the
//	                        listener closes now.
//	  closeWindow           kept-alive connections get their last answers
//	                        (with Connection: close) rather than a reset.
//	HTTPServerStopped       http.Server.Shutdown closes what is left idle.
//
// Then Run waits for the components, stops the watch caches, and etcd
// last. Upstream ends no watch of its own accord (they last until the
// process ends, or drain with --shutdown-watch-termination-grace-period);
// skiff ends them when it stops accepting, so that watchers see the end
// of a stream rather than a reset, and reconnect elsewhere at once.

// closeWindow is how long connections may stay open after the listener
// closed, at least, for the requests their clients had sent before to be
// read and answered rather than reset: closing a kept-alive connection
// under a request that is on its way is what a client sees as a reset.
// A connection goes as soon as it answered with Connection: close, so the
// window ends early when none is left.
const closeWindow = time.Second

// httpShutdownTimeout bounds http.Server.Shutdown at the end, when only
// idle connections and HTTP/2 connections waiting for their GOAWAY are
// left (upstream uses 2s there too: net/http waits 1s for the peer to
// answer a GOAWAY).
const httpShutdownTimeout = 2 * time.Second

// componentStopTimeout bounds how long the components, the watch caches
// and etcd may take to stop after the API server has; ShutdownBound counts
// it in.
const componentStopTimeout = 30 * time.Second

// etcdStartAbandon is how long Run waits, once ctx has ended during
// start-up, for etcd's start to return before it gives up on it.
const etcdStartAbandon = 5 * time.Second

// ShutdownBound is how long a `skiff server` with cfg may take to exit
// once told to: the shutdown delay, the drain of the requests in flight
// (each bounded by the request timeout), the close window and the stop of
// everything else. SignalContext ends the process when it is exceeded.
func ShutdownBound(cfg Config) time.Duration {
	return cfg.ShutdownDelayDuration + drainTimeout(cfg) + closeWindow + httpShutdownTimeout + componentStopTimeout
}

// drainTimeout bounds the wait for requests in flight: each is bounded by
// the request timeout already (upstream's ShutdownTimeout, 60s, is the
// same as its default request timeout).
func drainTimeout(cfg Config) time.Duration {
	if cfg.RequestTimeout > 0 {
		return cfg.RequestTimeout + time.Second
	}
	return apiserver.DefaultRequestTimeout + time.Second
}

// SignalContext returns a context that ends at the first SIGTERM or
// SIGINT. A second signal ends the process at once with status 1, as
// kube-apiserver's does; so does bound passing after the first, whatever
// start-up or shutdown step is still holding the process (a wait that
// does not heed its context). stop releases the signals and the watchdog.
func SignalContext(bound time.Duration) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			slog.Info("shutting down", "signal", sig.String(), "exit-at-the-latest-after", bound)
			cancel()
		case <-done:
			return
		}
		t := time.NewTimer(bound)
		defer t.Stop()
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "second signal (%s): exiting at once\n", sig)
			os.Exit(1)
		case <-t.C:
			fmt.Fprintf(os.Stderr, "still running %v after the signal: exiting\n", bound)
			os.Exit(1)
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(done)
			cancel()
		})
	}
}

// drainer is the network side of a graceful shutdown: an http.Handler in
// front of the API server that counts the requests in flight and, once
// closed, turns new requests away, and a ConnState hook that counts the
// open connections. The in-process transport does not go through it: the
// server's own components keep their API until they stop.
type drainer struct {
	next http.Handler
	// retryAfter answers turned-away requests with 429 instead of 503
	// (--shutdown-send-retry-after).
	retryAfter bool

	closed    chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	inFlight int
	idle     chan struct{} // closed when inFlight drops to 0, if waited on

	conns atomic.Int64 // open connections (not closed, not hijacked)
}

func newDrainer(next http.Handler, retryAfter bool) *drainer {
	return &drainer{next: next, retryAfter: retryAfter, closed: make(chan struct{})}
}

// exemptFromDrain are served to the end, as upstream: probes and scrapes
// must see the server as it is while it drains.
var exemptFromDrain = []string{"/readyz", "/livez", "/healthz", "/metrics"}

func exempt(r *http.Request) bool {
	for _, p := range exemptFromDrain {
		if strings.HasPrefix(r.URL.Path, p) {
			return true
		}
	}
	return false
}

func (d *drainer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case <-d.closed:
		// The connection goes after this answer: an HTTP/1 client opens
		// a new one (refused once the listener closed), an HTTP/2 one
		// gets a GOAWAY.
		w.Header().Set("Connection", "close")
		if !exempt(r) {
			d.turnAway(w)
			return
		}
	default:
	}
	if apiserver.LongRunning(r) {
		d.next.ServeHTTP(w, r)
		return
	}
	d.mu.Lock()
	d.inFlight++
	d.mu.Unlock()
	defer d.done()
	d.next.ServeHTTP(w, r)
}

func (d *drainer) done() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inFlight--
	if d.inFlight == 0 && d.idle != nil {
		close(d.idle)
		d.idle = nil
	}
}

// turnAway answers a request that came after the server stopped accepting
// as upstream does: 503 "apiserver is shutting down" with Retry-After: 1,
// or, with --shutdown-send-retry-after, 429 with Retry-After: 5. Both are
// Status objects; JSON, which every client decodes whatever it asked for.
func (d *drainer) turnAway(w http.ResponseWriter) {
	var st metav1.Status
	if d.retryAfter {
		st = apierrors.NewTooManyRequests("The apiserver is shutting down, please try again later.", 5).Status()
	} else {
		st = apierrors.NewServiceUnavailable("apiserver is shutting down").Status()
		st.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
	}
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	body, _ := json.Marshal(&st)
	w.Header().Set("Retry-After", strconv.Itoa(int(st.Details.RetryAfterSeconds)))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(int(st.Code))
	_, _ = w.Write(append(body, '\n'))
}

// close stops accepting requests (NotAcceptingNewRequest).
func (d *drainer) close() { d.closeOnce.Do(func() { close(d.closed) }) }

// wait blocks until no request counted is in flight, or ctx ends.
func (d *drainer) wait(ctx context.Context) error {
	d.mu.Lock()
	if d.inFlight == 0 {
		d.mu.Unlock()
		return nil
	}
	if d.idle == nil {
		d.idle = make(chan struct{})
	}
	idle := d.idle
	n := d.inFlight
	d.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d requests still in flight: %w", n, ctx.Err())
	}
}

// connState is the http.Server's ConnState hook.
func (d *drainer) connState(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		d.conns.Add(1)
	case http.StateClosed, http.StateHijacked:
		d.conns.Add(-1)
	}
}

// waitConnsGone blocks until every connection has closed or deadline
// passes, looking every few milliseconds.
func (d *drainer) waitConnsGone(deadline time.Time) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for d.conns.Load() > 0 && time.Now().Before(deadline) {
		<-t.C
	}
}

// startEtcd starts etcd (etcd.Start) but returns when ctx ends even if
// the start does not: embedded etcd waits without end for its database's
// file lock, which a process other than skiff may hold, and heeds ctx only
// after. If the start has not returned etcdStartAbandon after ctx ended,
// startEtcd gives up on it and returns, with ctx's error, a channel that
// is closed once the start has returned and what it started is closed.
func startEtcd(ctx context.Context, cfg etcd.Config, lg *slog.Logger) (db *etcd.Etcd, abandoned <-chan struct{}, err error) {
	type result struct {
		db  *etcd.Etcd
		err error
	}
	started := make(chan result, 1)
	go func() {
		db, err := etcd.Start(ctx, cfg)
		started <- result{db, err}
	}()
	select {
	case r := <-started:
		return r.db, nil, r.err
	case <-ctx.Done():
	}
	select {
	case r := <-started:
		if r.err == nil {
			// Started just as ctx ended: a stop all the same.
			_ = r.db.Close()
			return nil, nil, ctx.Err()
		}
		return nil, nil, r.err
	case <-time.After(etcdStartAbandon):
	}
	lg.Warn("etcd is still starting (is its database locked by another process?): giving up on it", "data-dir", cfg.DataDir)
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		if r := <-started; r.err == nil {
			_ = r.db.Close()
		}
	}()
	return nil, gone, fmt.Errorf("start abandoned: %w", ctx.Err())
}

// apiShutdown is what the shutdown sequence needs of the API server
// (apiserver.Server).
type apiShutdown interface {
	// ShutdownInitiated makes /readyz fail; requests are served as before.
	ShutdownInitiated()
	// Shutdown ends the watches and other long-running requests.
	Shutdown()
}

// httpLifecycle is what the graceful shutdown acts on.
type httpLifecycle struct {
	api      apiShutdown
	srv      *http.Server
	ln       net.Listener
	drainer  *drainer
	serveErr <-chan error
	cfg      Config
	log      *slog.Logger
	// notAccepting, if set, is called once the server no longer accepts
	// requests, before the watches end: the components beside the API
	// server and its own informers stop (they are clients: their
	// in-process watches end as they stop, not from under them).
	notAccepting func()
}

// shutdown runs the sequence above and returns once the HTTP server has
// stopped. ready says whether the server had become ready: one that had
// not has no load balancer to wait for, and skips the delay.
func (h *httpLifecycle) shutdown(ready bool) {
	began := time.Now()
	h.api.ShutdownInitiated()
	delay := h.cfg.ShutdownDelayDuration
	if !ready {
		delay = 0
	}
	h.log.Info("shutdown initiated: /readyz fails", "delay", delay)
	if delay > 0 {
		time.Sleep(delay)
	}

	h.drainer.close()
	var stoppedListening time.Time
	closeListener := func() {
		if err := h.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			h.log.Warn("closing the listener", "err", err)
		}
		stoppedListening = time.Now()
	}
	if !h.cfg.ShutdownSendRetryAfter {
		closeListener()
	}
	if h.notAccepting != nil {
		h.notAccepting()
	}
	h.api.Shutdown()
	h.log.Info("not accepting new requests", "listening", h.cfg.ShutdownSendRetryAfter, "after", time.Since(began).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout(h.cfg))
	if err := h.drainer.wait(ctx); err != nil {
		h.log.Warn("requests in flight did not finish", "err", err)
	}
	cancel()
	if h.cfg.ShutdownSendRetryAfter {
		closeListener()
	}
	h.drainer.waitConnsGone(stoppedListening.Add(closeWindow))

	ctx, cancel = context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		h.log.Warn("http shutdown", "err", err)
		_ = h.srv.Close()
	}
	if err := <-h.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		h.log.Warn("serving", "err", err)
	}
	h.log.Info("API server stopped", "after", time.Since(began).Round(time.Millisecond))
}
