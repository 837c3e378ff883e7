package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// DefaultRequestTimeout is upstream's --request-timeout: how long a
// request that is not long-running may take, reading its body included.
const DefaultRequestTimeout = 60 * time.Second

// longRunning says whether a request is exempt from the request timeout
// and the in-flight limits, as upstream's: watches and the streaming
// subresources. A watch has its own bound (timeoutSeconds, or a random
// 30 to 60 minutes: watch.go).
func longRunning(info requestInfo) bool {
	if info.verb == "watch" || info.verb == "proxy" {
		return true
	}
	switch info.sub {
	case "attach", "exec", "log", "portforward", "proxy":
		return true
	}
	return false
}

// requestTimeout is the time r may take: the server's limit, or less when
// the request's ?timeout= asks for less. A timeout of 0 or above the limit
// is the limit, as upstream's.
func requestTimeout(r *http.Request, limit time.Duration) (time.Duration, error) {
	v := r.URL.Query().Get("timeout")
	if v == "" {
		return limit, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("invalid timeout specified in the request URL - %v", err))
	}
	if d > 0 && d < limit {
		return d, nil
	}
	return limit, nil
}

// serveWithTimeout runs serve for a request that must end within timeout.
// The request's context ends at the deadline, and so does the reading of
// its body: a client that trickles its body is cut off. serve runs on its
// own goroutine, so that a handler busy with the CPU cannot hold the
// client past the deadline either: the client then gets upstream's 504,
// or, if the answer had already begun, a broken stream; what the handler
// writes afterwards is dropped. The handler is not stopped: it sees its
// context end, and every step it takes is bounded on its own (body size,
// patch bounds, storage deadlines).
func serveWithTimeout(w http.ResponseWriter, r *http.Request, timeout time.Duration, serve http.HandlerFunc) {
	deadline := time.Now().Add(timeout)
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()
	if r.Body != nil && r.Body != http.NoBody {
		// Not every writer can (the in-process transport has no
		// connection to time out); a request without a deadline on its
		// body still ends with its context.
		_ = http.NewResponseController(w).SetReadDeadline(deadline)
	}
	tw := &timeoutWriter{w: w, header: http.Header{}}
	done := make(chan struct{})
	var panicked any
	go func() {
		defer close(done)
		defer func() { panicked = recover() }()
		serve(tw, r.WithContext(ctx))
	}()
	select {
	case <-done:
		if panicked != nil {
			panic(panicked) // to ServeHTTP's recovery, on the serving goroutine
		}
	case <-ctx.Done():
		if tw.timeout(r) {
			return
		}
		// The answer has begun, often the handler's own answer to the
		// deadline: it gets a moment to end before it is broken off.
		select {
		case <-done:
			if panicked != nil {
				panic(panicked)
			}
		case <-time.After(abortGrace):
			tw.abort()
			panic(http.ErrAbortHandler)
		}
	}
}

// abortGrace is how long an answer begun before the deadline may go on
// after it.
const abortGrace = time.Second

// requestTimedOut is upstream's 504 for a request past its deadline.
func requestTimedOut() error {
	return apierrors.NewTimeoutError("request did not complete within requested timeout - context deadline exceeded", 0)
}

// timeoutWriter passes a handler's answer on until the deadline, and
// drops it after. The handler gets a header map of its own, so that the
// 504 written on the serving goroutine never races with it.
type timeoutWriter struct {
	w      http.ResponseWriter
	header http.Header

	mu       sync.Mutex
	wrote    bool // the handler's status line went out
	timedOut bool
}

func (tw *timeoutWriter) Header() http.Header { return tw.header }

func (tw *timeoutWriter) WriteHeader(code int) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	tw.writeHeaderLocked(code)
}

func (tw *timeoutWriter) writeHeaderLocked(code int) {
	if tw.timedOut || tw.wrote {
		return
	}
	tw.wrote = true
	dst := tw.w.Header()
	for k, v := range tw.header {
		dst[k] = v
	}
	tw.w.WriteHeader(code)
}

func (tw *timeoutWriter) Write(b []byte) (int, error) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.timedOut {
		return 0, http.ErrHandlerTimeout
	}
	tw.writeHeaderLocked(http.StatusOK)
	return tw.w.Write(b)
}

// FlushError is Flush for http.ResponseController.
func (tw *timeoutWriter) FlushError() error {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.timedOut {
		return http.ErrHandlerTimeout
	}
	return http.NewResponseController(tw.w).Flush()
}

// SetReadDeadline is SetReadDeadline for http.ResponseController: the
// handler may cut its body off sooner than the request's deadline.
func (tw *timeoutWriter) SetReadDeadline(t time.Time) error {
	return http.NewResponseController(tw.w).SetReadDeadline(t)
}

// timeout answers 504 in the handler's place at the deadline and drops
// what the handler writes from then on; it reports false, and does
// nothing, if the handler's answer has begun.
func (tw *timeoutWriter) timeout(r *http.Request) bool {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.wrote {
		return false
	}
	tw.timedOut = true
	writeError(tw.w, r, requestTimedOut())
	return true
}

// abort drops what the handler writes from now on.
func (tw *timeoutWriter) abort() {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	tw.timedOut = true
}
