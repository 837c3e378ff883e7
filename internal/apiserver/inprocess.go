package apiserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// inProcessRemoteAddr is the RemoteAddr of requests that reach the API
// server through an InProcessTransport (what logs name as the remote).
const inProcessRemoteAddr = "in-process"

// InProcessTransport returns an http.RoundTripper that serves each request
// with h in this process: the request and response are plain HTTP (method,
// path, headers, status, a streamed body), without TLS, HTTP/2 framing or a
// socket. The components `skiff server` runs beside its API server use it
// through client-go as they would use a TLS transport, so they stay API
// clients (and can run in another process with only the transport
// changed) without paying for encryption and two network stacks per request.
//
// Closing a response body early, or cancelling the request's context,
// cancels the handler's context. A handler that panics fails the request
// (or, once the status line was sent, its body) instead of the process.
// Connection upgrades (exec, attach, port-forward) are not supported.
func InProcessTransport(h http.Handler) http.RoundTripper {
	return &inProcessTransport{handler: h}
}

type inProcessTransport struct{ handler http.Handler }

func (t *inProcessTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	r := req.Clone(ctx)
	if r.Body == nil {
		r.Body = http.NoBody
	}
	r.RequestURI = req.URL.RequestURI()
	r.RemoteAddr = inProcessRemoteAddr
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	if r.Host == "" {
		r.Host = req.URL.Host
	}
	pr, pw := io.Pipe()
	w := &inProcessWriter{header: http.Header{}, pw: pw, buf: bufio.NewWriterSize(pw, 16<<10), sent: make(chan struct{})}
	go func() {
		defer func() {
			if p := recover(); p != nil {
				w.fail(fmt.Errorf("in-process handler for %s %s panicked: %v", r.Method, r.URL.Path, p))
				return
			}
			w.finish()
		}()
		t.handler.ServeHTTP(w, r)
	}()
	select {
	case <-w.sent:
	case <-ctx.Done():
		cancel()
		_ = pr.CloseWithError(ctx.Err())
		return nil, ctx.Err()
	}
	if w.err != nil { // the handler failed before sending a status
		cancel()
		_ = pr.Close()
		return nil, w.err
	}
	resp := &http.Response{
		Status:        strconv.Itoa(w.code) + " " + http.StatusText(w.code),
		StatusCode:    w.code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sentHeader,
		ContentLength: -1,
		Body:          &inProcessBody{pr: pr, cancel: cancel},
		Request:       req,
	}
	if n, err := strconv.ParseInt(w.sentHeader.Get("Content-Length"), 10, 64); err == nil {
		resp.ContentLength = n
	}
	if req.Method == http.MethodHead {
		resp.Body = http.NoBody
		cancel()
		_ = pr.Close()
	}
	return resp, nil
}

// inProcessWriter is the handler's http.ResponseWriter: the status and
// headers go to RoundTrip once, the body through a buffered pipe that
// Flush (watches) or the handler's return pushes to the reader.
type inProcessWriter struct {
	header     http.Header
	sentHeader http.Header
	code       int
	pw         *io.PipeWriter
	buf        *bufio.Writer

	once sync.Once
	sent chan struct{} // closed when code and sentHeader (or err) are set
	err  error         // set before sent closes when the handler failed first
}

func (w *inProcessWriter) Header() http.Header { return w.header }

func (w *inProcessWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 {
		return // informational: nothing to pass on in process
	}
	w.once.Do(func() {
		w.code = code
		w.sentHeader = w.header.Clone()
		w.sentHeader.Del("Transfer-Encoding")
		close(w.sent)
	})
}

func (w *inProcessWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.buf.Write(b)
}

// Flush sends what the handler wrote so far to the reader.
func (w *inProcessWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush for http.ResponseController.
func (w *inProcessWriter) FlushError() error {
	w.WriteHeader(http.StatusOK)
	return w.buf.Flush()
}

// finish ends a handler that returned: an implicit 200 if it wrote
// nothing, the rest of its body, then end of stream.
func (w *inProcessWriter) finish() {
	w.WriteHeader(http.StatusOK)
	if err := w.buf.Flush(); err != nil {
		_ = w.pw.CloseWithError(err)
		return
	}
	_ = w.pw.Close()
}

// fail ends a handler that panicked: the request fails if no status was
// sent yet, otherwise the body ends with err.
func (w *inProcessWriter) fail(err error) {
	w.once.Do(func() {
		w.err = err
		close(w.sent)
	})
	_ = w.pw.CloseWithError(err)
}

// inProcessBody is a response body; closing it stops the handler.
type inProcessBody struct {
	pr     *io.PipeReader
	cancel context.CancelFunc
}

func (b *inProcessBody) Read(p []byte) (int, error) { return b.pr.Read(p) }

func (b *inProcessBody) Close() error {
	b.cancel()
	return b.pr.CloseWithError(errInProcessBodyClosed)
}

var errInProcessBodyClosed = errors.New("in-process response body closed")
