package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
)

// Config is what New needs.
type Config struct {
	// Addr is the listen address, e.g. "127.0.0.1:10250"; port 0 picks one.
	Addr string
	// TLS holds the serving certificate and ClientCAs. The server verifies
	// a client certificate, when one is given, against ClientCAs whatever
	// ClientAuth says (a caller without one must bring a bearer token),
	// and speaks HTTP/1.1 only (upgrades need it).
	TLS *tls.Config
	// NodeName goes into /stats/summary and is the name callers are
	// authorized on (nodes/<NodeName>/proxy, ...).
	NodeName string
	// Auth authenticates bearer tokens and authorizes every request
	// (required): see auth.go.
	Auth    Reviews
	Pods    Pods
	Runtime Runtime
	// Metrics is what GET /metrics serves: the node's registry (kubelet,
	// proxy and DNS metrics and the process collectors). Nil: /metrics is
	// a 404 like any unknown path.
	Metrics prometheus.Gatherer
	// CgroupRoot is the kubelet's (cgroup.PodParent), which
	// /metrics/cadvisor names pods' series by.
	CgroupRoot string
	// Log defaults to slog.Default().
	Log *slog.Logger
}

// Server is the kubelet's HTTPS server. Create it with New, then Start it.
type Server struct {
	ln              net.Listener
	tls             *tls.Config
	nodeName        string
	pods            Pods
	runtime         Runtime
	log             *slog.Logger
	streamTransport *http.Transport
	rates           rateCache
	sandboxes       sandboxCache
	auth            *auth
	metrics         prometheus.Gatherer
	cgroupRoot      string

	// Knobs tests turn; New sets the production values.
	procRoot string        // where /proc is
	logPoll  time.Duration // how often a log follower looks for more
	logCheck time.Duration // how often a log follower asks whether the container runs
}

// kubeletTLS is a copy of c as the server speaks: a client certificate
// verified when given, HTTP/1.1, TLS 1.2 at least.
func kubeletTLS(c *tls.Config) *tls.Config {
	tc := c.Clone()
	tc.ClientAuth = tls.VerifyClientCertIfGiven
	tc.NextProtos = []string{"http/1.1"}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	return tc
}

// New checks cfg and listens on cfg.Addr at once, so Port is known before
// Start. The listener is closed by Start when it returns.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.TLS == nil:
		return nil, errors.New("kubelet server: TLS config is required")
	case len(cfg.TLS.Certificates) == 0 && cfg.TLS.GetCertificate == nil && cfg.TLS.GetConfigForClient == nil:
		return nil, errors.New("kubelet server: TLS config has no serving certificate")
	case cfg.TLS.ClientCAs == nil && cfg.TLS.GetConfigForClient == nil:
		return nil, errors.New("kubelet server: TLS config has no ClientCAs to verify clients with")
	case cfg.Pods == nil || cfg.Runtime == nil:
		return nil, errors.New("kubelet server: Pods and Runtime are required")
	case cfg.Auth == nil || cfg.NodeName == "":
		return nil, errors.New("kubelet server: Auth and NodeName are required")
	}
	tc := kubeletTLS(cfg.TLS)
	if get := cfg.TLS.GetConfigForClient; get != nil {
		// The config a handshake gets (one with the client CAs in force)
		// follows the same rules.
		tc.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := get(h)
			if err != nil || c == nil {
				return c, err
			}
			return kubeletTLS(c), nil
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("kubelet server: listen on %s: %w", cfg.Addr, err)
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	return &Server{
		ln:              ln,
		auth:            newAuth(cfg.Auth, cfg.NodeName, log),
		tls:             tc,
		nodeName:        cfg.NodeName,
		pods:            cfg.Pods,
		runtime:         cfg.Runtime,
		metrics:         cfg.Metrics,
		cgroupRoot:      cfg.CgroupRoot,
		log:             log,
		streamTransport: newStreamTransport(),
		procRoot:        "/proc",
		logPoll:         250 * time.Millisecond,
		logCheck:        time.Second,
	}, nil
}

// Port is the TCP port the server listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Start serves until ctx ends, then stops accepting, cancels every request
// in flight (log followers, proxied streams) and returns once their handlers
// have exited. It returns nil after a clean shutdown. Call it once.
func (s *Server) Start(ctx context.Context) error {
	var inflight handlerTracker
	routes := s.auth.filter(s.routes())
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !inflight.enter() {
				writeStatus(w, http.StatusServiceUnavailable, "the kubelet server is shutting down")
				return
			}
			defer inflight.exit()
			routes.ServeHTTP(w, r)
		}),
		TLSConfig:         s.tls,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		// Requests live no longer than the server: a follower or a stream
		// ends when ctx does.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(s.ln, s.tls)) }()
	s.log.Info("kubelet server listening", "addr", s.ln.Addr().String())

	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err = srv.Shutdown(shutdownCtx)
		cancel()
		if err != nil {
			err = errors.Join(err, srv.Close())
		}
		if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) {
			err = errors.Join(err, serveErr)
		}
	}
	// Hijacked connections (proxied streams) are not tracked by Shutdown;
	// their handlers end with the request context, which ctx cancels.
	inflight.closeAndWait()
	s.streamTransport.CloseIdleConnections()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("kubelet server: %w", err)
	}
	return nil
}

// handlerTracker counts running handlers so that Start can wait for them,
// and refuses new ones once it waits.
type handlerTracker struct {
	mu     sync.Mutex
	wg     sync.WaitGroup
	closed bool
}

func (t *handlerTracker) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

func (t *handlerTracker) exit() { t.wg.Done() }

func (t *handlerTracker) closeAndWait() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.wg.Wait()
}

// routes is the URL space; anything else is a 404 Status.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", serveHealthz)
	mux.HandleFunc("GET /pods", s.servePods)
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.serveContainerLogs)
	for _, method := range []string{"GET", "POST"} {
		// The {uid} forms are upstream's too; the UID is not checked.
		mux.HandleFunc(method+" /exec/{namespace}/{pod}/{container}", s.serveExec)
		mux.HandleFunc(method+" /exec/{namespace}/{pod}/{uid}/{container}", s.serveExec)
		mux.HandleFunc(method+" /attach/{namespace}/{pod}/{container}", s.serveAttach)
		mux.HandleFunc(method+" /attach/{namespace}/{pod}/{uid}/{container}", s.serveAttach)
		mux.HandleFunc(method+" /portForward/{namespace}/{pod}", s.servePortForward)
		mux.HandleFunc(method+" /portForward/{namespace}/{pod}/{uid}", s.servePortForward)
	}
	mux.HandleFunc("GET /stats/summary", s.serveStatsSummary)
	mux.HandleFunc("GET /metrics/resource", s.serveResourceMetrics)
	mux.HandleFunc("GET /metrics/cadvisor", s.serveCadvisorMetrics)
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.promHandler(s.metrics))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusNotFound, fmt.Sprintf("the server could not find the requested resource %s", r.URL.Path))
	})
	return mux
}

func serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok"))
}

// servePods answers GET /pods with a v1.PodList of the pods on this node.
func (s *Server) servePods(w http.ResponseWriter, _ *http.Request) {
	list := v1.PodList{}
	list.Kind, list.APIVersion = "PodList", "v1"
	list.Items = []v1.Pod{}
	for _, p := range s.pods.Pods() {
		list.Items = append(list.Items, *p)
	}
	body, err := json.Marshal(&list)
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, fmt.Sprintf("encode pods: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}
