// Package apiserver serves the Kubernetes REST API over HTTP: routing,
// content negotiation (JSON, YAML, protobuf, Table), discovery, the verbs
// (get, list, watch, create, update, patch, delete, deletecollection) and
// the status and scale subresources, authentication and authorization,
// health and metrics. It is generic over the resource descriptors of
// internal/registry and reaches state only through internal/storage.
package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"

	"github.com/skiff-io/skiff/internal/audit"
	"github.com/skiff-io/skiff/internal/flowcontrol"
	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/storage"
)

// Config is what a Server needs.
type Config struct {
	// Resources are the served resources. A resource with StoredAs set must
	// name another resource of the list.
	Resources []*registry.Resource
	// NewStorage returns the store for one stored resource. The server
	// calls it once per resource that is not StoredAs another, at New.
	NewStorage func(cfg storage.Config) (storage.Interface, error)
	// NewExtensionStorage returns the store of a resource added while the
	// server runs (Extend) and a func that stops it; nil refuses Extend.
	NewExtensionStorage func(cfg storage.Config) (storage.Interface, func(), error)
	// Authenticator identifies the user of a request; Authorizer decides
	// whether the user may do it.
	Authenticator Authenticator
	Authorizer    Authorizer
	// Admission runs on every write after defaulting and before
	// validation, in order: upstream's mutating admission plugins.
	// Validation runs after validation: the validating ones, which must
	// see the object as the mutating webhooks left it.
	Admission  []Admission
	Validation []Admission
	// Dynamic is the admission the cluster's objects configure: the
	// webhooks and ValidatingAdmissionPolicies. Nil: none.
	Dynamic DynamicAdmission
	// IssueToken signs service account tokens (serviceaccounts/token);
	// nil serves 503 there. APIAudiences is the audience a token gets
	// when its request names none.
	IssueToken   TokenIssuer
	APIAudiences []string
	// Profiling serves Go's profiles at /debug/pprof/ (upstream's
	// --profiling), to users the authorizer lets get those non-resource
	// URLs (cluster-admin).
	Profiling bool
	// ResourceMetrics, when set, is served as metrics.k8s.io/v1beta1
	// (nodes and pods, get and list) from memory; see resourcemetrics.go.
	ResourceMetrics ResourceMetrics
	// ReadyChecks are named checks that /readyz runs (etcd, caches).
	ReadyChecks map[string]func(context.Context) error
	// KubeletClientCert is the client certificate the server presents to
	// kubelets for pods/log, exec, attach, portforward and nodes/proxy;
	// nil presents none.
	KubeletClientCert *tls.Certificate
	// KubeletCAs, when set, verify the kubelets' serving certificates
	// (upstream's --kubelet-certificate-authority), read per connection
	// so that a CA rotation applies; nil verifies none, as upstream
	// without that flag.
	KubeletCAs func() *x509.CertPool
	// GetKubeletClientCert, when set, is asked for that certificate on
	// every TLS handshake instead (one renewed while the server runs).
	GetKubeletClientCert func(*tls.CertificateRequestInfo) (*tls.Certificate, error)
	// ExternalAddress is host:port that discovery tells clients to use.
	ExternalAddress string
	// Registerer receives the server's metrics; nil means none.
	Registerer prometheus.Registerer
	// OpenIDDiscovery and OpenIDKeySet, when set, are the service account
	// issuer's OpenID Connect discovery document and key set, served at
	// OpenIDDiscoveryPath and OpenIDKeySetPath to authorized callers.
	OpenIDDiscovery, OpenIDKeySet []byte
	// Gatherer serves /metrics; nil means prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger

	// RequestTimeout bounds every request that is not long-running (0:
	// DefaultRequestTimeout); ?timeout= may shorten it.
	RequestTimeout time.Duration
	// MaxRequestsInFlight and MaxMutatingRequestsInFlight bound the reads
	// and the writes served at once (0: no bound); see inFlight.
	MaxRequestsInFlight         int
	MaxMutatingRequestsInFlight int
	// FlowControl, when set, admits requests by API Priority and
	// Fairness instead of the in-flight bounds (see priorityAndFairness).
	FlowControl *flowcontrol.Controller

	// AuditPolicy decides which requests are audited, at which level;
	// AuditSink receives their events (see audit.go). Requests are
	// audited only when both are set.
	AuditPolicy *audit.Policy
	AuditSink   AuditSink
}

// Server is the API's http.Handler.
type Server struct {
	cfg       Config
	log       *slog.Logger
	resources map[schema.GroupVersionResource]*served
	byKind    map[schema.GroupVersionKind]*served
	metrics   *metrics
	kubelet   *kubeletClient
	mux       *http.ServeMux
	// shutdownInitiated is closed when the server is told to stop:
	// /readyz fails from then on. shutdown is closed when it drains:
	// watches and other long-running requests end.
	shutdownInitiated     chan struct{}
	shutdown              chan struct{}
	initiateOnce, endOnce sync.Once

	openapiOnce sync.Once
	openapi     *openAPIDoc

	// fields records managedFields and merges server-side applies.
	fields fieldManagers

	// limiter admits authorized requests: API Priority and Fairness or
	// the in-flight bounds.
	limiter admitter

	// ext holds the resources added while the server runs (extensions.go);
	// extMu serializes the changes to it.
	ext   atomic.Pointer[extensions]
	extMu sync.Mutex
	// onExtend are told of every Extend (OnExtend); guarded by extMu.
	onExtend []func()

	// remote holds the group/versions proxied to other servers
	// (aggregation.go).
	remote atomic.Pointer[remoteAPIs]
	// disco holds the discovery documents of the built-in resources,
	// the extensions and the remote APIs; discoMu serializes their
	// rebuilding.
	disco   atomic.Pointer[discoveryDocs]
	discoMu sync.Mutex
}

// served is one resource as the handlers use it: its descriptor, the
// store it lives in and its key prefix.
type served struct {
	res    *registry.Resource
	store  storage.Interface
	prefix string
	// stored is the descriptor of the stored form: res itself, or the
	// resource named by res.StoredAs.
	stored *registry.Resource
	// fields are the field managers of an extension resource by
	// subresource ("" for the main one); built-in ones share s.fields.
	fields map[string]*managedfields.FieldManager
}

// New builds a Server. It creates every resource's store through
// cfg.NewStorage.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Authorizer == nil {
		cfg.Authorizer = AlwaysAllow{}
	}
	cfg.Authorizer = auditedAuthorizer(cfg)
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		resources: map[schema.GroupVersionResource]*served{},
		byKind:    map[schema.GroupVersionKind]*served{},
		shutdown:  make(chan struct{}),
		limiter:   newInFlight(cfg.MaxRequestsInFlight, cfg.MaxMutatingRequestsInFlight),
	}
	s.shutdownInitiated = make(chan struct{})
	if cfg.FlowControl != nil {
		s.limiter = &priorityAndFairness{fc: cfg.FlowControl, lookup: s.lookup}
	}
	// The reviews answer questions about the request's own user through
	// this server's authenticator and authorizer: every server has them.
	cfg.Resources = append(slices.Clip(cfg.Resources), s.reviewResources()...)
	cfg.Resources = append(cfg.Resources, s.resourceMetricsResources()...)
	s.cfg.Resources = cfg.Resources
	for _, res := range cfg.Resources {
		if res != nil && (res.Create != nil || res.InMemory()) {
			sv := &served{res: res, stored: res} // virtual or in memory: no store
			s.resources[res.GroupVersionResource()] = sv
			s.byKind[res.GroupVersionKind()] = sv
			continue
		}
		if res == nil || res.StoredAs != nil {
			continue
		}
		prefix := StorageKeyPrefix(res.GroupVersionResource())
		st, err := cfg.NewStorage(storage.Config{
			Prefix:      prefix,
			GVK:         res.GroupVersionKind(),
			NewFunc:     res.New,
			NewListFunc: res.NewList,
		})
		if err != nil {
			return nil, fmt.Errorf("storage for %s: %w", res.GroupVersionResource(), err)
		}
		sv := &served{res: res, store: st, prefix: prefix, stored: res}
		s.resources[res.GroupVersionResource()] = sv
		s.byKind[res.GroupVersionKind()] = sv
	}
	for _, res := range cfg.Resources {
		if res == nil || res.StoredAs == nil {
			continue
		}
		target, ok := s.resources[*res.StoredAs]
		if !ok {
			return nil, fmt.Errorf("%s is stored as %s, which is not served", res.GroupVersionResource(), res.StoredAs)
		}
		sv := &served{res: res, store: target.store, prefix: target.prefix, stored: target.res}
		s.resources[res.GroupVersionResource()] = sv
		s.byKind[res.GroupVersionKind()] = sv
	}
	s.disco.Store(newDiscovery(cfg.Resources, nil, cfg.ExternalAddress))
	s.metrics = newMetrics(cfg.Registerer)
	s.kubelet = newKubeletClient(cfg.KubeletClientCert, cfg.GetKubeletClientCert, cfg.KubeletCAs)
	s.mux = s.routes()
	return s, nil
}

// StorageKeyPrefix is the etcd key prefix of a resource's objects:
// "/registry/<resource>/" for the core group and
// "/registry/<group>/<resource>/" for the others.
func StorageKeyPrefix(gvr schema.GroupVersionResource) string {
	if gvr.Group == "" {
		return "/registry/" + gvr.Resource + "/"
	}
	return "/registry/" + gvr.Group + "/" + gvr.Resource + "/"
}

// Resource returns the descriptor of a served resource, or nil.
func (s *Server) Resource(gvr schema.GroupVersionResource) *registry.Resource {
	if sv, ok := s.lookup(gvr); ok {
		return sv.res
	}
	return nil
}

// ShutdownInitiated makes /readyz fail (check "shutdown") while every
// request is still served: upstream's ShutdownInitiated, which gives load
// balancers --shutdown-delay-duration to stop sending traffic here.
func (s *Server) ShutdownInitiated() {
	s.initiateOnce.Do(func() { close(s.shutdownInitiated) })
}

// Shutdown starts draining: /readyz fails, and open watches and other
// long-running requests end (a watch's stream ends as a stream ends, not
// with a reset) so that http.Server.Shutdown can complete.
func (s *Server) Shutdown() {
	s.ShutdownInitiated()
	s.endOnce.Do(func() { close(s.shutdown) })
}

// LongRunning reports whether r is a long-running request (a watch,
// exec, attach, port-forward, logs or proxy): one that the request
// timeout does not bound and that a drain ends rather than waits for.
func LongRunning(r *http.Request) bool {
	return longRunning(parseRequest(r))
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/livez", s.serveHealth("livez", nil))
	mux.HandleFunc("/livez/", s.serveHealth("livez", nil))
	mux.HandleFunc("/healthz", s.serveHealth("healthz", s.cfg.ReadyChecks))
	mux.HandleFunc("/healthz/", s.serveHealth("healthz", s.cfg.ReadyChecks))
	mux.HandleFunc("/readyz", s.serveHealth("readyz", s.cfg.ReadyChecks))
	mux.HandleFunc("/readyz/", s.serveHealth("readyz", s.cfg.ReadyChecks))
	mux.HandleFunc("/version", s.serveVersion)
	mux.HandleFunc("/version/", s.serveVersion)
	mux.Handle("/metrics", s.metrics.handler(s.cfg.Gatherer))
	mux.HandleFunc("/api", s.serveAPI)
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("/apis", s.serveAPI)
	mux.HandleFunc("/apis/", s.serveAPI)
	mux.HandleFunc("/openapi/v2", s.serveOpenAPIV2)
	mux.HandleFunc("/openapi/v3", s.serveOpenAPIV3)
	mux.HandleFunc("/openapi/v3/", s.serveOpenAPIV3)
	if s.cfg.OpenIDDiscovery != nil {
		mux.Handle(OpenIDDiscoveryPath, serveDocument("application/json", s.cfg.OpenIDDiscovery))
		mux.Handle(OpenIDKeySetPath, serveDocument("application/jwk-set+json", s.cfg.OpenIDKeySet))
	}
	if s.cfg.Profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("/", s.serveNotFound)
	return mux
}

// publicPaths are served without authentication, as upstream's
// system:public-info-viewer role allows.
func publicPath(p string) bool {
	switch p {
	case "/livez", "/readyz", "/healthz", "/version":
		return true
	}
	return strings.HasPrefix(p, "/livez/") || strings.HasPrefix(p, "/readyz/") || strings.HasPrefix(p, "/healthz/")
}

// ServeHTTP authenticates, authorizes, records metrics and routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &recordingWriter{ResponseWriter: w, code: http.StatusOK}
	info := parseRequest(r)
	r = s.auditInit(rw, r, start)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				// A deliberate abort (serveWithTimeout): net/http breaks
				// the stream.
				s.metrics.observe(r, info, rw.code, time.Since(start))
				panic(p)
			}
			// A handler bug must not take the server down with it.
			s.log.Error("panic serving request", "path", r.URL.Path, "panic", p)
			if !rw.wrote {
				writeError(rw, r, fmt.Errorf("internal error: %v", p))
			}
		}
		s.metrics.observe(r, info, rw.code, time.Since(start))
	}()

	if longRunning(info) {
		s.serve(rw, r, info)
		return
	}
	timeout, err := requestTimeout(r, s.cfg.RequestTimeout)
	if err != nil {
		writeError(rw, r, err)
		return
	}
	serveWithTimeout(rw, r, timeout, func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, info) })
}

// serve authenticates, authorizes, admits the request (API Priority and
// Fairness, or the in-flight bounds) and routes it.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, info requestInfo) {
	var ar *auditRecord // the request's audit event; nil when not audited
	if !publicPath(r.URL.Path) {
		u, err := s.authenticate(r)
		if err != nil {
			if w, r, ar = s.auditBegin(w, r, info, nil); ar != nil {
				defer ar.end()
			}
			// A client without credentials gets no more of the
			// connection: net/http would otherwise wait for the rest of
			// its body, however slowly it comes, before reusing it. The
			// deadline comes after the answer: a read that fails ends
			// the request's context, and before the answer is written
			// that would turn the 401 into serveWithTimeout's 504.
			w.Header().Set("Connection", "close")
			writeError(w, r, err)
			_ = http.NewResponseController(w).SetReadDeadline(time.Now())
			return
		}
		if w, r, ar = s.auditBegin(w, r, info, u); ar != nil {
			defer ar.end()
		}
		if r, u, err = s.impersonate(r, u, info); err != nil {
			writeError(w, r, err)
			return
		}
		ar.impersonated(r, u)
		r = r.WithContext(withUser(r.Context(), u))
		if err := s.authorizeAudited(r, u, info, ar); err != nil {
			writeError(w, r, err)
			return
		}
		release, err := s.limiter.admit(w, r, info, u)
		if err != nil {
			writeError(w, r, err)
			return
		}
		defer release()
	} else if w, r, ar = s.auditPublic(w, r, info); ar != nil {
		defer ar.end()
	}
	if ra := s.remoteFor(info); ra != nil {
		// Another server's group/version: its answer goes back as it
		// comes, compressed or not.
		s.serveRemote(w, r, ra)
		return
	}
	if wantsGzip(r, info) {
		g := newGzipWriter(w)
		defer g.finish()
		w = ar.uncompressed(g)
	}
	ctx := WithNotes(context.WithValue(r.Context(), requestInfoKey{}, info), w)
	ar.handlers(ctx)
	s.mux.ServeHTTP(w, r.WithContext(ctx))
}

type requestInfoKey struct{}

// requestInfoOf returns the request's parsed URL, parsed once by
// ServeHTTP (again only when a handler is called directly).
func requestInfoOf(r *http.Request) requestInfo {
	if info, ok := r.Context().Value(requestInfoKey{}).(requestInfo); ok {
		return info
	}
	return parseRequest(r)
}

// recordingWriter remembers the status code for metrics and logs.
type recordingWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *recordingWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// errNotFinished marks parts of the API that skiff does not serve yet.
var errNotFinished = errors.New("not implemented in skiff yet")
