package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
)

// Config is one cluster DNS server.
type Config struct {
	// Addrs are the host:port addresses to serve, UDP and TCP each
	// ("10.43.0.10:53"). Port 0 picks a free port, the same for UDP and TCP.
	Addrs []string
	// Domain is the cluster domain ("cluster.local").
	Domain string
	// Upstreams are host:port resolvers for every name outside the cluster
	// domain, tried in order. Empty: the nameservers of ResolvConf.
	Upstreams []string
	// ResolvConf is read for upstreams when Upstreams is empty
	// ("/etc/resolv.conf").
	ResolvConf string
	Client     kubernetes.Interface
	// TTL of the cluster records and the SOA's minimum TTL; 0 means 5 s
	// (CoreDNS's kubernetes plugin's default).
	TTL uint32
	Log *slog.Logger
	// Registerer receives CoreDNS's metrics (metrics.go); nil means none.
	Registerer prometheus.Registerer
}

// Server answers DNS queries on its addresses. Create it with New, run it
// with Start.
type Server struct {
	cfg     Config
	zone    string // Domain, lower case, fully qualified
	log     *slog.Logger
	conns   []listener
	serve   []*handler // by listener
	fwd     *forwarder
	idx     *index
	ready   chan struct{}
	started atomic.Bool
	// ctx is Start's context: forwarded queries end with it.
	ctx atomic.Pointer[context.Context]
}

type listener struct {
	udp net.PacketConn
	tcp net.Listener
}

// upstreamTimeout bounds one exchange with one upstream (CoreDNS's forward
// plugin uses 2 s for a UDP read too).
const upstreamTimeout = 2 * time.Second

// New checks cfg and binds every address at once, so that a caller asking
// for port 0 learns the ports from Addrs before Start. The sockets are
// closed when Start returns.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("dns: no Kubernetes client")
	}
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("dns: no listen address")
	}
	if cfg.Domain == "" {
		cfg.Domain = "cluster.local"
	}
	if _, ok := dns.IsDomainName(cfg.Domain); !ok {
		return nil, fmt.Errorf("dns: domain %q is not a domain name", cfg.Domain)
	}
	if cfg.TTL == 0 {
		cfg.TTL = 5
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	m := newMetrics(cfg.Registerer)
	s := &Server{
		cfg:   cfg,
		zone:  dns.CanonicalName(cfg.Domain),
		log:   cfg.Log.With("component", "dns"),
		ready: make(chan struct{}),
	}
	for _, addr := range cfg.Addrs {
		l, err := listen(addr)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("dns: listen on %s: %w", addr, err)
		}
		s.conns = append(s.conns, l)
		s.serve = append(s.serve, &handler{s: s, m: m.forListener(l.udp.LocalAddr().String(), s.zone)})
	}
	upstreams := cfg.Upstreams
	if len(upstreams) == 0 {
		rc, err := dns.ClientConfigFromFile(cfg.ResolvConf)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("dns: upstreams from %s: %w", cfg.ResolvConf, err)
		}
		for _, ns := range rc.Servers {
			upstreams = append(upstreams, net.JoinHostPort(ns, rc.Port))
		}
	}
	// A resolver that is this server (a node whose resolv.conf names the
	// cluster DNS) would loop: leave it out.
	self := map[string]bool{}
	for _, a := range s.Addrs() {
		self[a] = true
	}
	var ups []string
	for _, u := range upstreams {
		if !self[u] {
			ups = append(ups, u)
		}
	}
	if len(ups) == 0 {
		s.log.Warn("no upstream resolvers: names outside the cluster domain get SERVFAIL", "resolvConf", cfg.ResolvConf)
	}
	s.fwd = newForwarder(ups, upstreamTimeout, m)
	s.idx = newIndex(cfg.Client)
	// Registered last: a New that fails leaves the registry as it was.
	if err := m.register(cfg.Registerer); err != nil {
		s.closeListeners()
		return nil, err
	}
	return s, nil
}

// listen binds addr for UDP and TCP. With port 0 it takes the UDP port the
// kernel picks and tries again if TCP has that port taken.
func listen(addr string) (listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return listener{}, err
	}
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return listener{}, err
		}
		p := port
		if p == "0" {
			p = strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, p))
		if err == nil {
			return listener{udp: pc, tcp: l}, nil
		}
		pc.Close()
		lastErr = err
		if port != "0" {
			break
		}
	}
	return listener{}, lastErr
}

func (s *Server) closeListeners() {
	for _, l := range s.conns {
		l.udp.Close()
		l.tcp.Close()
	}
}

// Addrs returns the addresses served, host:port, with the ports bound
// (for Config.Addrs with port 0), in the order of Config.Addrs.
func (s *Server) Addrs() []string {
	out := make([]string, 0, len(s.conns))
	for _, l := range s.conns {
		out = append(out, l.udp.LocalAddr().String())
	}
	return out
}

// Ready is closed once the informers have synced. Before that the server
// answers SERVFAIL for the cluster domain (an NXDOMAIN from an empty cache
// would be cached by clients) and forwards everything else.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Start runs the informers and serves until ctx ends, then stops serving,
// closes the sockets and returns after every goroutine it started has
// exited. It returns an error if a socket fails while serving, and may be
// called once.
func (s *Server) Start(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("dns: server already started")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx.Store(&ctx)

	var wg sync.WaitGroup
	errs := make(chan error, 2*len(s.conns))
	var servers []*dns.Server
	for i, l := range s.conns {
		for _, srv := range []*dns.Server{
			{PacketConn: l.udp, Handler: s.serve[i], Net: "udp"},
			{Listener: l.tcp, Handler: s.serve[i], Net: "tcp", ReadTimeout: 10 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second }},
		} {
			started := make(chan struct{})
			srv.NotifyStartedFunc = func() { close(started) }
			done := make(chan struct{})
			servers = append(servers, srv)
			wg.Add(2)
			go func() {
				defer wg.Done()
				defer close(done)
				if err := srv.ActivateAndServe(); err != nil && ctx.Err() == nil {
					errs <- fmt.Errorf("dns: serving %s: %w", srv.Net, err)
					cancel()
				}
			}()
			go func() { // stops srv when ctx ends, once it has started
				defer wg.Done()
				<-ctx.Done()
				select {
				case <-started:
				case <-done:
					return
				}
				sctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
				defer stop()
				_ = srv.ShutdownContext(sctx)
			}()
		}
	}
	s.log.Info("cluster DNS listening", "addrs", s.Addrs(), "domain", s.cfg.Domain, "upstreams", s.fwd.upstreams)

	wg.Add(1)
	go func() {
		defer wg.Done()
		if s.idx.run(ctx) {
			close(s.ready)
			s.log.Info("cluster DNS ready")
		}
	}()

	<-ctx.Done()
	wg.Wait()
	s.closeListeners() // a server stopped before it started leaves its socket open
	s.idx.shutdown()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// baseContext is Start's context, or a background one before Start.
func (s *Server) baseContext() context.Context {
	if p := s.ctx.Load(); p != nil {
		return *p
	}
	return context.Background()
}

// dashed is the DNS label for an address in pod and endpoint names:
// 10.42.0.5 -> 10-42-0-5, fd00::1 -> fd00--1.
func dashed(ip string) string {
	return strings.NewReplacer(".", "-", ":", "-").Replace(ip)
}
