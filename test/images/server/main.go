// Command server is the HTTP server skiff's end-to-end tests run in pods
// (image skiff.io/test/server:v1 and :v2, built by test/images/build). It
// uses the standard library only and is built static (CGO_ENABLED=0).
//
// Endpoints (every answer ends with a newline):
//
//	GET  /               "hello from <hostname>"
//	GET  /hostname       "<hostname>"
//	GET  /version        the version set at build time (-ldflags "-X main.version=v1")
//	GET  /healthz        200 "ok", or 500 "failing" after POST /healthz/fail
//	POST /healthz/fail   make /healthz fail
//	POST /healthz/ok     make /healthz succeed again
//	GET  /cpu?ms=N       burn CPU for N milliseconds
//	GET  /sleep?ms=N     answer after N milliseconds (an in-flight request for drain tests)
//	GET  /env?name=NAME  the value of environment variable NAME
//	GET  /exit?code=N    answer, then exit with code N
//
// It listens on :8080, or on -port / $PORT. On SIGTERM or SIGINT it drains:
// it stops accepting connections, finishes the requests in flight, and
// exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=v1".
var version = "dev"

// drainTimeout bounds how long a SIGTERM waits for requests in flight;
// Kubernetes' default grace period is 30s.
const drainTimeout = 25 * time.Second

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	flag.StringVar(&port, "port", port, "TCP port to listen on (env PORT)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv := &http.Server{Addr: ":" + port, Handler: newHandler(log), ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	log.Info("listening", "addr", srv.Addr, "version", version)

	select {
	case err := <-served:
		log.Error("serve", "err", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	log.Info("draining")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Error("drain", "err", err)
		os.Exit(1)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		log.Error("serve", "err", err)
	}
	log.Info("drained; exiting")
}

func newHandler(log *slog.Logger) http.Handler {
	var failing atomic.Bool
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "unknown"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", hostname)
	})
	mux.HandleFunc("GET /hostname", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, hostname)
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, version)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "failing", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /healthz/fail", func(w http.ResponseWriter, r *http.Request) {
		failing.Store(true)
		log.Info("healthz set to fail")
		fmt.Fprintln(w, "healthz will fail")
	})
	mux.HandleFunc("POST /healthz/ok", func(w http.ResponseWriter, r *http.Request) {
		failing.Store(false)
		log.Info("healthz set to succeed")
		fmt.Fprintln(w, "healthz will succeed")
	})
	mux.HandleFunc("GET /cpu", func(w http.ResponseWriter, r *http.Request) {
		ms, ok := intParam(w, r, "ms")
		if !ok {
			return
		}
		end := time.Now().Add(time.Duration(ms) * time.Millisecond)
		n := 0
		for time.Now().Before(end) {
			for i := 0; i < 10000; i++ {
				n += i * i
			}
		}
		fmt.Fprintf(w, "burned %d ms (%d)\n", ms, n%10)
	})
	mux.HandleFunc("GET /sleep", func(w http.ResponseWriter, r *http.Request) {
		ms, ok := intParam(w, r, "ms")
		if !ok {
			return
		}
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			fmt.Fprintf(w, "slept %d ms\n", ms)
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("GET /env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, os.Getenv(r.URL.Query().Get("name")))
	})
	mux.HandleFunc("GET /exit", func(w http.ResponseWriter, r *http.Request) {
		code, ok := intParam(w, r, "code")
		if !ok {
			return
		}
		log.Info("exiting on request", "code", code)
		fmt.Fprintf(w, "exiting with code %d\n", code)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		os.Exit(code)
	})
	return mux
}

// intParam reads a non-negative integer query parameter, answering 400
// itself when it is missing or malformed.
func intParam(w http.ResponseWriter, r *http.Request, name string) (int, bool) {
	v, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil || v < 0 {
		http.Error(w, fmt.Sprintf("query parameter %s: want a non-negative integer", name), http.StatusBadRequest)
		return 0, false
	}
	return v, true
}
