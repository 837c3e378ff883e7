package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"

	"github.com/skiff-io/skiff/internal/pki"
)

// A joined agent fails over between API servers. Every skiff server of a
// cluster serves a certificate from the cluster CA that carries the name
// "kubernetes" (pki's serving names), and the default/kubernetes Endpoints
// list the servers that are alive. So every client the agent makes keeps
// --server as its URL but verifies the name "kubernetes", and connects
// through apiServers, which knows every server's address and tries them
// in turn from the one that worked last. An address has worked once its
// TLS handshake has: one that accepts connections but is no API server of
// this cluster (a stale address, a reused IP) is passed over like one
// that refuses them.
//
// How long a dead server holds up the agent, with the defaults below:
//
//   - A new connection: a refused dial (the server process died, its
//     machine is up) moves on at once; a dial nothing answers (the
//     machine is gone) after dialTimeout (2 s); a connection accepted but
//     whose TLS handshake gets no answer (a frozen process) after
//     answerTimeout (3 s), not client-go's 10 s handshake timeout.
//   - A connection already open: HTTP/2 pings once it has read nothing for
//     pingAfter (5 s), and is closed when the ping has no answer within
//     pingTimeout (3 s), failing its requests and watches, which client-go
//     retries on a new connection. client-go's defaults are 30 s and 15 s
//     (HTTP2_READ_IDLE_TIMEOUT_SECONDS, HTTP2_PING_TIMEOUT_SECONDS); these
//     are set on the agent's own transports only, not through the
//     environment, which would reach every client of the process.
//   - A server whose connection was closed with a write left unanswered
//     for answerTimeout (its ping lost), or that failed a dial or a
//     handshake, is put last, so that the next connection tries the
//     others first; when one succeeds after others failed, the
//     connections still open to those are closed at once rather than each
//     waiting for its own ping.
//
// So a request stuck on a dead server fails within about 8 s and the next
// one is on a live server at once (2 s or 3 s later when the dead one was
// not known dead yet). Node Leases are renewed every 10 s and expire after
// 40 s: the node stays Ready.
//
// With a single address (no other server known) nothing changes: it is
// dialled with client-go's 30 s timeout, the handshake has client-go's
// 10 s, and their errors are returned as they are. Only the HTTP/2 pings
// come sooner.

// File, below the agent's state dir, of the API server addresses last
// known: an agent restarted while its --server is down still reaches the
// others.
const apiServersFile = "apiservers"

// apiServerName is the name every API server's certificate carries.
const apiServerName = "kubernetes"

// Defaults of apiServers' timings (see above).
const (
	dialTimeout     = 2 * time.Second
	lastDialTimeout = 30 * time.Second // client-go's own, for the last address tried
	answerTimeout   = 3 * time.Second
	pingAfter       = 5 * time.Second
	pingTimeout     = 3 * time.Second
	refreshPeriod   = 10 * time.Second
)

// apiServers is the API servers an agent knows and a dialer that fails
// over between them. Its methods are safe for concurrent use.
type apiServers struct {
	// server is --server; seed is its host:port, the address client-go
	// asks to dial, always known.
	server, seed string
	tls          bool
	// file keeps the known addresses; "" keeps them in memory only.
	file string
	log  *slog.Logger

	// dial makes a TCP connection; tests replace it.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timings: the constants above; tests shorten them.
	dialTimeout, lastDialTimeout, answerTimeout, pingAfter, pingTimeout, refreshPeriod time.Duration

	mu sync.Mutex
	// order is the known addresses, the one to dial first first.
	order []string
	conns map[string]map[*serverConn]struct{}
}

// newAPIServers knows server (a URL) and the addresses kept in file,
// if any.
func newAPIServers(server, file string, log *slog.Logger) (*apiServers, error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("agent: API server %q is not a URL", server)
	}
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	if log == nil {
		log = slog.Default()
	}
	s := &apiServers{
		server: server, seed: net.JoinHostPort(u.Hostname(), port), tls: u.Scheme != "http",
		file: file, log: log,
		dial:        (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		dialTimeout: dialTimeout, lastDialTimeout: lastDialTimeout, answerTimeout: answerTimeout,
		pingAfter: pingAfter, pingTimeout: pingTimeout, refreshPeriod: refreshPeriod,
		conns: map[string]map[*serverConn]struct{}{},
	}
	s.order = []string{s.seed}
	if file != "" {
		kept, err := readAddrs(file)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("reading the known API servers", "file", file, "err", err)
		}
		for _, a := range kept {
			if !slices.Contains(s.order, a) {
				s.order = append(s.order, a)
			}
		}
	}
	return s, nil
}

// known is the addresses known, the one to dial first first.
func (s *apiServers) known() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.order)
}

// config is rc for the API servers: rc's URL (--server), dialled through
// s, verifying the name every API server's certificate carries, with
// HTTP/2 connections pinged after pingAfter of silence and closed after
// pingTimeout without an answer, and refusing a node's certificate.
func (s *apiServers) config(rc *rest.Config) *rest.Config {
	rc = rest.CopyConfig(rc)
	rc.Dial = s.DialContext
	if s.tls && rc.TLSClientConfig.ServerName == "" {
		rc.TLSClientConfig.ServerName = apiServerName
	}
	rc.WrapTransport = transport.Wrappers(s.tuneTransport, rc.WrapTransport)
	return rc
}

// tuneTransport sets the HTTP/2 health check, the node certificate check
// and the TLS dialer on the *http.Transport client-go built for a config
// of s (one of its own: the config's dialer makes its cache key unique),
// before its first connection. If client-go ever hands over something
// else, every request fails rather than run without them (the unit tests
// catch that on an upgrade).
func (s *apiServers) tuneTransport(rt http.RoundTripper) http.RoundTripper {
	t := httpTransport(rt)
	if t == nil || t.DialContext == nil || (s.tls && t.TLSClientConfig == nil) {
		return failingTransport{fmt.Errorf("agent: client-go's transport %T is not an *http.Transport with a dialer and TLS", rt)}
	}
	if t.HTTP2 == nil {
		t.HTTP2 = &http.HTTP2Config{}
	}
	// golang.org/x/net/http2, which client-go configures, reads these
	// from the http.Transport at each new connection, as net/http's own.
	t.HTTP2.SendPingTimeout, t.HTTP2.PingTimeout = s.pingAfter, s.pingTimeout
	if s.tls {
		t.TLSClientConfig.VerifyConnection = notNodeCertificate
		// client-go's dialer: s.DialContext, wrapped by the one that
		// closes the connections when the client certificate files
		// change.
		dial := t.DialContext
		t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return s.dialTLS(ctx, network, addr, t, dial)
		}
	}
	return rt
}

// notNodeCertificate refuses a server certificate issued to a node. The
// cluster CA signs the kubelets' serving certificates too, for names the
// node claims, and clients verify "kubernetes" whatever server they
// dialled: a node that got "kubernetes" into its serving certificate must
// not pass for an API server.
func notNodeCertificate(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	if leaf := cs.PeerCertificates[0]; slices.Contains(leaf.Subject.Organization, pki.NodesOrganization) {
		return fmt.Errorf("agent: the server presented node certificate %q, not an API server's", leaf.Subject.CommonName)
	}
	return nil
}

// httpTransport is the *http.Transport below client-go's wrappers.
func httpTransport(rt http.RoundTripper) *http.Transport {
	for rt != nil {
		switch t := rt.(type) {
		case *http.Transport:
			return t
		case utilnet.RoundTripperWrapper:
			rt = t.WrappedRoundTripper()
		default:
			return nil
		}
	}
	return nil
}

type failingTransport struct{ err error }

func (f failingTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, f.err }

// dialTarget is the context key of the address dialTLS has DialContext
// dial.
type dialTarget struct{}

// DialContext is the config's dialer (rest.Config.Dial). Through dialTLS
// it dials the address dialTLS chose; else (an http:// server) it dials
// the known addresses in turn, from the one that worked last, each for
// dialTimeout but the last, which has lastDialTimeout. Any address other
// than --server's (an HTTPS proxy's) is dialled as asked.
func (s *apiServers) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if a, ok := ctx.Value(dialTarget{}).(string); ok {
		c, err := s.dial(ctx, network, a)
		if err != nil {
			return nil, err
		}
		return s.track(a, c), nil
	}
	if addr != s.seed {
		return s.dialOne(ctx, network, addr, s.lastDialTimeout)
	}
	return s.failover(ctx, func(ctx context.Context, a string, last bool) (net.Conn, error) {
		timeout := s.dialTimeout
		if last {
			timeout = s.lastDialTimeout
		}
		c, err := s.dialOne(ctx, network, a, timeout)
		if err != nil {
			return nil, err
		}
		return s.track(a, c), nil
	})
}

func (s *apiServers) dialOne(ctx context.Context, network, addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return s.dial(ctx, network, addr)
}

// errHandshakeTimeout is net/http's error for a TLS handshake that timed
// out.
var errHandshakeTimeout = errors.New("net/http: TLS handshake timeout")

// dialTLS is t's TLS dialer: it connects to the known addresses in turn,
// from the one that worked last, with dial (client-go's, through
// DialContext), and makes the TLS handshake t would make. Each address
// has dialTimeout and answerTimeout, the last one lastDialTimeout and t's
// handshake timeout. Any address other than --server's (an HTTPS proxy's)
// is connected to as asked.
func (s *apiServers) dialTLS(ctx context.Context, network, addr string, t *http.Transport,
	dial func(ctx context.Context, network, addr string) (net.Conn, error)) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	// As net/http's own TLS dial.
	handshake := func(ctx context.Context, c net.Conn, timeout time.Duration) (net.Conn, error) {
		cfg := t.TLSClientConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		tc := tls.Client(c, cfg)
		hctx, cancel := ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			hctx, cancel = context.WithTimeout(ctx, timeout)
		}
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			_ = c.Close()
			if ctx.Err() == nil && errors.Is(hctx.Err(), context.DeadlineExceeded) {
				return nil, errHandshakeTimeout
			}
			return nil, err
		}
		return tc, nil
	}
	if addr != s.seed {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return handshake(ctx, c, t.TLSHandshakeTimeout)
	}
	return s.failover(ctx, func(ctx context.Context, a string, last bool) (net.Conn, error) {
		dialTimeout, handshakeTimeout := s.dialTimeout, s.answerTimeout
		if last {
			dialTimeout, handshakeTimeout = s.lastDialTimeout, t.TLSHandshakeTimeout
		}
		dctx, cancel := context.WithTimeout(context.WithValue(ctx, dialTarget{}, a), dialTimeout)
		c, err := dial(dctx, network, addr)
		cancel()
		if err != nil {
			return nil, err
		}
		return handshake(ctx, c, handshakeTimeout)
	})
}

// failover connects with try to the known addresses in turn, from the one
// that worked last, until one works; last is true for the last one tried.
// That one is first from then on, and those that failed last. The
// connections to those are closed: their requests fail now rather than
// when their pings go unanswered. With one address known, its error is
// returned as it is.
func (s *apiServers) failover(ctx context.Context, try func(ctx context.Context, a string, last bool) (net.Conn, error)) (net.Conn, error) {
	order := s.known()
	var errs []error
	var failed []string
	for i, a := range order {
		c, err := try(ctx, a, i == len(order)-1)
		if err == nil {
			s.promote(a, failed)
			return c, nil
		}
		if ctx.Err() != nil {
			// The caller gave up: no fault of the address.
			return nil, err
		}
		s.demote(a)
		failed = append(failed, a)
		errs = append(errs, err)
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, fmt.Errorf("no API server reachable: %w", errors.Join(errs...))
}

// track makes c, a connection to a, one of s's.
func (s *apiServers) track(a string, c net.Conn) net.Conn {
	sc := &serverConn{Conn: c, s: s, addr: a}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[a] == nil {
		s.conns[a] = map[*serverConn]struct{}{}
	}
	s.conns[a][sc] = struct{}{}
	return sc
}

// promote puts a first, and closes the connections to the addresses in
// failed.
func (s *apiServers) promote(a string, failed []string) {
	var stale []*serverConn
	s.mu.Lock()
	s.order = moveTo(s.order, a, true)
	for _, f := range failed {
		for c := range s.conns[f] {
			stale = append(stale, c)
		}
	}
	s.mu.Unlock()
	for _, c := range stale {
		_ = c.Close()
	}
	if len(failed) > 0 {
		s.log.Warn("API server unreachable; using another", "unreachable", failed, "server", a, "closedConnections", len(stale))
	}
}

// demote puts a last.
func (s *apiServers) demote(a string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.order = moveTo(s.order, a, false)
}

func (s *apiServers) untrack(c *serverConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns[c.addr], c)
}

// moveTo moves a to the front (or the back) of order.
func moveTo(order []string, a string, front bool) []string {
	i := slices.Index(order, a)
	if i < 0 {
		return order
	}
	order = slices.Delete(order, i, i+1)
	if front {
		return slices.Insert(order, 0, a)
	}
	return append(order, a)
}

// serverConn is a connection to an API server, tracked by apiServers.
type serverConn struct {
	net.Conn
	s    *apiServers
	addr string
	// waiting is when the oldest write the server has not answered was
	// made (UnixNano), 0 when none: a read answers every write before it.
	waiting atomic.Int64
	closed  atomic.Bool
}

func (c *serverConn) Write(b []byte) (int, error) {
	c.waiting.CompareAndSwap(0, time.Now().UnixNano())
	return c.Conn.Write(b)
}

func (c *serverConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.waiting.Store(0)
	}
	return n, err
}

// Close closes the connection; when it was left without an answer for
// answerTimeout (its HTTP/2 ping lost, most likely), its server is put
// last.
func (c *serverConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.s.untrack(c)
		if w := c.waiting.Load(); w != 0 && time.Since(time.Unix(0, w)) >= c.s.answerTimeout {
			c.s.log.Info("connection to API server closed without an answer", "server", c.addr)
			c.s.demote(c.addr)
		}
	}
	return c.Conn.Close()
}

// Start keeps the known addresses up to date from the default/kubernetes
// Endpoints every refreshPeriod until ctx ends. A node may get that
// object (not list or watch it: the system:node rules), hence the polling.
func (s *apiServers) Start(ctx context.Context, client kubernetes.Interface) {
	tick := time.NewTicker(s.refreshPeriod)
	defer tick.Stop()
	failing := false
	for {
		err := s.refresh(ctx, client)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			s.log.Warn("reading the API servers from default/kubernetes Endpoints", "err", err)
			failing = true
		case err == nil:
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// refresh reads the default/kubernetes Endpoints once and, if they list
// any address, makes them the known addresses (with --server's).
func (s *apiServers) refresh(ctx context.Context, client kubernetes.Interface) error {
	ctx, cancel := context.WithTimeout(ctx, s.refreshPeriod)
	defer cancel()
	ep, err := client.CoreV1().Endpoints(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		return err
	}
	if addrs := endpointAddrs(ep); len(addrs) > 0 {
		s.setKnown(addrs)
	}
	return nil
}

// setKnown makes addrs and --server's address the known ones: those
// already known keep their place, new ones come last. A change is kept
// in the file.
func (s *apiServers) setKnown(addrs []string) {
	s.mu.Lock()
	next := make([]string, 0, len(addrs)+1)
	for _, a := range s.order {
		if a == s.seed || slices.Contains(addrs, a) {
			next = append(next, a)
		}
	}
	for _, a := range addrs {
		if !slices.Contains(next, a) {
			next = append(next, a)
		}
	}
	changed := !slices.Equal(next, s.order)
	s.order = next
	s.mu.Unlock()
	if !changed {
		return
	}
	s.log.Info("API servers", "addresses", next)
	if s.file == "" {
		return
	}
	if err := writeAddrs(s.file, next); err != nil {
		s.log.Warn("keeping the known API servers", "file", s.file, "err", err)
	}
}

// endpointAddrs is the ready addresses of ep, each with its subset's
// "https" port (or its only one).
func endpointAddrs(ep *corev1.Endpoints) []string {
	var out []string
	for _, ss := range ep.Subsets {
		port := int32(0)
		for _, p := range ss.Ports {
			if p.Name == "https" || len(ss.Ports) == 1 {
				port = p.Port
			}
		}
		if port <= 0 {
			continue
		}
		for _, a := range ss.Addresses {
			if ip := net.ParseIP(a.IP); ip != nil {
				if addr := net.JoinHostPort(ip.String(), strconv.Itoa(int(port))); !slices.Contains(out, addr) {
					out = append(out, addr)
				}
			}
		}
	}
	return out
}

// readAddrs reads a file of host:port lines.
func readAddrs(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := string(bytes.TrimSpace(sc.Bytes()))
		if _, _, err := net.SplitHostPort(line); err == nil {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}

// writeAddrs replaces file with addrs, one a line (mode 0600).
func writeAddrs(file string, addrs []string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	var b bytes.Buffer
	for _, a := range addrs {
		b.WriteString(a)
		b.WriteByte('\n')
	}
	return writeFileAtomic(file, b.Bytes())
}
