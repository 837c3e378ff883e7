package agent

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/pki"
)

var discardLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// testCA is a cluster CA made by pki.Ensure: its serving certificate
// carries "kubernetes", as every API server's.
type testCA struct {
	bundle  *pki.Bundle
	serving tls.Certificate
	pem     []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	b, err := pki.Ensure(pki.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	serving, err := tls.LoadX509KeyPair(b.ServingCertFile, b.ServingKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(b.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{bundle: b, serving: serving, pem: caPEM}
}

// nodeCert is a serving certificate of the cluster CA for a node named
// "kubernetes", as csrsigning would issue it.
func (ca *testCA) nodeCert(t *testing.T) tls.Certificate {
	t.Helper()
	signer, err := tls.LoadX509KeyPair(ca.bundle.CAFile, ca.bundle.CAKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7),
		Subject:   pkix.Name{CommonName: "system:node:kubernetes", Organization: []string{pki.NodesOrganization}},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"kubernetes"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer.Leaf, &key.PublicKey, signer.PrivateKey.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// startServer is an HTTPS (HTTP/2) server with cert that answers /version
// with its name and holds every watch open until the client leaves.
func startServer(t *testing.T, name string, cert tls.Certificate) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("watch") == "true" {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		if r.URL.Path != "/version" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(version.Info{GitVersion: name})
	}))
	srv.EnableHTTP2 = true
	// The agent presents its node certificate.
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func addrOf(srv *httptest.Server) string { return srv.Listener.Addr().String() }

// testServers is apiServers for --server https://seed, knowing others,
// keeping them in a temporary file.
func testServers(t *testing.T, seed string, others ...string) *apiServers {
	t.Helper()
	s, err := newAPIServers("https://"+seed, filepath.Join(t.TempDir(), apiServersFile), discardLog)
	if err != nil {
		t.Fatal(err)
	}
	if len(others) > 0 {
		s.setKnown(others)
	}
	return s
}

// testClient is an agent's client through s, trusting ca: its client
// certificate in files, as the agent's (client-go reloads them, through a
// dialer of its own around s's).
func testClient(t *testing.T, s *apiServers, ca *testCA) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(s.config(&rest.Config{Host: s.server, TLSClientConfig: rest.TLSClientConfig{
		CAData: ca.pem, CertFile: ca.bundle.AdminCertFile, KeyFile: ca.bundle.AdminKeyFile}}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serverName asks the API server which it is.
func serverName(ctx context.Context, c kubernetes.Interface) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	raw, err := c.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return "", err
	}
	var v version.Info
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	return v.GitVersion, nil
}

// untilServed asks for the server's name until a request succeeds, for
// at most bound; it returns the name and the requests' errors.
func untilServed(t *testing.T, c kubernetes.Interface, bound time.Duration) (string, []error) {
	t.Helper()
	var errs []error
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		name, err := serverName(context.Background(), c)
		if err == nil {
			return name, errs
		}
		errs = append(errs, err)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no request succeeded within %v: %v", bound, errs)
	return "", nil
}

// connsTo is how many connections to a are open.
func (s *apiServers) connsTo(a string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns[a])
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// (a) The first server goes away: the next request is served by another,
// at once when the dial is refused, after dialTimeout when nothing
// answers it.
func TestDialFailsOver(t *testing.T) {
	ca := newTestCA(t)
	for _, tc := range []struct {
		name      string
		blackhole bool // the dial to the first server hangs (its machine is gone)
		bound     time.Duration
	}{
		{name: "refused", bound: time.Second},
		{name: "unanswered dial", blackhole: true, bound: dialTimeout + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s1, s2, s3 := startServer(t, "s1", ca.serving), startServer(t, "s2", ca.serving), startServer(t, "s3", ca.serving)
			s := testServers(t, addrOf(s1), addrOf(s2), addrOf(s3))
			var gone atomic.Bool
			dial := s.dial
			s.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				if gone.Load() && addr == addrOf(s1) {
					<-ctx.Done()
					return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
				}
				return dial(ctx, network, addr)
			}
			c := testClient(t, s, ca)
			if name, err := serverName(context.Background(), c); err != nil || name != "s1" {
				t.Fatalf("first request: served by %q, %v; want s1", name, err)
			}

			killed := time.Now()
			if tc.blackhole {
				gone.Store(true)
				s1.CloseClientConnections()
			} else {
				s1.Close()
			}
			// A request sent while the client has not yet read the end
			// of its connection fails, and client-go retries a GET a
			// second later: the bound is on the dialer, from then on.
			waitFor(t, func() bool { return s.connsTo(addrOf(s1)) == 0 })
			start := time.Now()
			name, errs := untilServed(t, c, 30*time.Second)
			took := time.Since(start)
			t.Logf("served by %s %v after the client saw its connection end, %v after the first server went away (%d failed requests)",
				name, took.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond), len(errs))
			if name != "s2" {
				t.Errorf("served by %s, want s2 (the next known)", name)
			}
			if took > tc.bound {
				t.Errorf("failed over in %v, want within %v", took, tc.bound)
			}
			if got, want := s.known(), []string{addrOf(s2), addrOf(s3), addrOf(s1)}; !cmp.Equal(got, want) {
				t.Errorf("order after the failover: %v, want %v (the one that worked first, the dead one last)", got, want)
			}
			// It stays there.
			if name, err := serverName(context.Background(), c); err != nil || name != "s2" {
				t.Errorf("next request served by %q, %v; want s2", name, err)
			}
		})
	}
}

// freezableProxy forwards TCP connections to a server until frozen; then
// it forwards nothing more but closes nothing, and accepts new connections
// without answering: a frozen process, or a machine gone from the
// network whose connections nothing resets.
type freezableProxy struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
	done   chan struct{}
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *freezableProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezableProxy{ln: ln, target: target, done: make(chan struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		close(p.done)
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *freezableProxy) keep(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *freezableProxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.keep(in)
		if p.frozen.Load() {
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.keep(out)
		p.wg.Go(func() { p.pipe(out, in) })
		p.wg.Go(func() { p.pipe(in, out) })
	}
}

func (p *freezableProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if p.frozen.Load() {
				<-p.done
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// (c) The server behind --server stops answering without closing
// anything: a watch on it fails once its HTTP/2 ping goes unanswered, and
// the next request is served by another server.
func TestFrozenServerFailsOver(t *testing.T) {
	ca := newTestCA(t)
	s1, s2, s3 := startServer(t, "s1", ca.serving), startServer(t, "s2", ca.serving), startServer(t, "s3", ca.serving)
	p := startProxy(t, addrOf(s1))
	s := testServers(t, p.ln.Addr().String(), addrOf(s2), addrOf(s3))
	c := testClient(t, s, ca)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if name, err := serverName(ctx, c); err != nil || name != "s1" {
		t.Fatalf("first request: served by %q, %v; want s1", name, err)
	}
	w, err := c.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()

	start := time.Now()
	p.frozen.Store(true)
	bound := pingAfter + pingTimeout + 2*time.Second
	// A request made just after the freeze, on the connection to the
	// frozen server (as a Lease renewal would be).
	inFlight := make(chan string, 1)
	go func() {
		name, err := serverName(ctx, c)
		if err != nil {
			name = err.Error()
		}
		inFlight <- name
	}()
	select {
	case ev, ok := <-w.ResultChan():
		// client-go ends a broken watch with an Error event or by
		// closing the channel.
		if ok && ev.Type != watch.Error {
			t.Fatalf("the watch got a %s event from a frozen server", ev.Type)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the watch on a frozen server was still open after 30 s")
	}
	watchFailed := time.Since(start)
	name, errs := untilServed(t, c, 30*time.Second)
	served := time.Since(start)
	t.Logf("frozen server: watch failed after %v, next request served by %s after %v (%d failed requests)",
		watchFailed.Round(time.Millisecond), name, served.Round(time.Millisecond), len(errs))
	if watchFailed > bound {
		t.Errorf("the watch failed after %v, want within %v", watchFailed, bound)
	}
	if name == "s1" {
		t.Errorf("served by the frozen server")
	}
	if served > bound+time.Second {
		t.Errorf("served after %v, want within %v", served, bound+time.Second)
	}
	select {
	case got := <-inFlight:
		t.Logf("the request in flight at the freeze: %s after %v", got, time.Since(start).Round(time.Millisecond))
	case <-time.After(bound):
		t.Errorf("the request in flight at the freeze was still waiting %v after it", time.Since(start))
	}
	if got := s.known(); got[len(got)-1] != p.ln.Addr().String() {
		t.Errorf("known %v: want the frozen server last", got)
	}
}

// A new connection that the server accepts but never answers (a frozen
// process) is given up after answerTimeout when another server is known.
func TestUnansweredHandshakeFailsOver(t *testing.T) {
	ca := newTestCA(t)
	s1, s2 := startServer(t, "s1", ca.serving), startServer(t, "s2", ca.serving)
	p := startProxy(t, addrOf(s1))
	p.frozen.Store(true)
	s := testServers(t, p.ln.Addr().String(), addrOf(s2))
	c := testClient(t, s, ca)
	start := time.Now()
	name, errs := untilServed(t, c, 30*time.Second)
	took := time.Since(start)
	t.Logf("served by %s after %v (%d failed requests: %v)", name, took.Round(time.Millisecond), len(errs), errs)
	if name != "s2" {
		t.Errorf("served by %s, want s2", name)
	}
	if len(errs) > 0 {
		t.Errorf("%d requests failed, want none: the dialer tries the next server itself", len(errs))
	}
	if bound := answerTimeout + time.Second; took > bound {
		t.Errorf("served after %v, want within %v", took, bound)
	}
}

// With one server known, the dialer is client-go's: the dial error as it
// is, and a handshake left unanswered is given client-go's timeout.
func TestSingleServerUnchanged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted sync.WaitGroup
	accepted.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	})
	t.Cleanup(accepted.Wait)
	t.Cleanup(func() { _ = ln.Close() })
	addr := ln.Addr().String()
	s := testServers(t, addr)
	s.answerTimeout = 50 * time.Millisecond
	tr := &http.Transport{TLSClientConfig: &tls.Config{}, TLSHandshakeTimeout: 500 * time.Millisecond}
	start := time.Now()
	_, err = s.dialTLS(context.Background(), "tcp", addr, tr, s.DialContext)
	if took := time.Since(start); !errors.Is(err, errHandshakeTimeout) || took < tr.TLSHandshakeTimeout {
		t.Errorf("unanswered handshake with the only server: %v after %v, want %v after %v", err, took, errHandshakeTimeout, tr.TLSHandshakeTimeout)
	}

	_ = ln.Close()
	_, err = s.DialContext(context.Background(), "tcp", addr)
	var op *net.OpError
	if !errors.As(err, &op) || strings.Contains(err.Error(), "no API server") {
		t.Errorf("dial to the only server, closed: %v, want the dial's own error", err)
	}
	if got := s.known(); !cmp.Equal(got, []string{addr}) {
		t.Errorf("known %v, want only %s", got, addr)
	}
}

// An address that answers with a certificate the agent does not trust
// (an address kept from another cluster, a reused IP) is passed over,
// not kept as the one that works.
func TestUntrustedServerPassedOver(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	stranger, s2 := startServer(t, "stranger", other.serving), startServer(t, "s2", ca.serving)
	s := testServers(t, addrOf(stranger), addrOf(s2))
	c := testClient(t, s, ca)
	for range 2 {
		if name, err := serverName(context.Background(), c); err != nil || name != "s2" {
			t.Errorf("served by %q, %v; want s2", name, err)
		}
	}
	if got, want := s.known(), []string{addrOf(s2), addrOf(stranger)}; !cmp.Equal(got, want) {
		t.Errorf("known %v, want %v", got, want)
	}
}

// Every server certificate of the cluster CA verifies as "kubernetes",
// but a node's does not pass for an API server's.
func TestNodeCertificateRefused(t *testing.T) {
	ca := newTestCA(t)
	node := startServer(t, "node", ca.nodeCert(t))
	s := testServers(t, addrOf(node))
	if name, err := serverName(context.Background(), testClient(t, s, ca)); err == nil || !strings.Contains(err.Error(), "node certificate") {
		t.Errorf("a server with a node's certificate: served by %q, %v; want refused as a node certificate", name, err)
	}
}

// (b) The known addresses follow the default/kubernetes Endpoints, keep
// --server's, and are kept in the agent's data dir for the next start.
func TestRefreshFromEndpoints(t *testing.T) {
	const seed = "lb.example:6443"
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes"},
		Subsets: []corev1.EndpointSubset{{
			Addresses:         []corev1.EndpointAddress{{IP: "10.0.0.1"}, {IP: "10.0.0.2"}},
			NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.0.0.9"}},
			Ports:             []corev1.EndpointPort{{Name: "metrics", Port: 9000}, {Name: "https", Port: 6443}},
		}},
	}
	client := fake.NewClientset(ep)
	file := filepath.Join(t.TempDir(), "agent", apiServersFile)
	s, err := newAPIServers("https://"+seed, file, discardLog)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.refresh(ctx, client); err != nil {
		t.Fatal(err)
	}
	want := []string{seed, "10.0.0.1:6443", "10.0.0.2:6443"}
	if diff := cmp.Diff(want, s.known()); diff != "" {
		t.Errorf("known after a refresh (-want +got):\n%s", diff)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatalf("not kept: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("kept with mode %v, want 0600", fi.Mode().Perm())
	}

	// A restart, --server down or not, knows them all.
	again, err := newAPIServers("https://"+seed, file, discardLog)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, again.known()); diff != "" {
		t.Errorf("known after a restart (-want +got):\n%s", diff)
	}
	other, err := newAPIServers("https://10.0.0.2:6443", file, discardLog)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"10.0.0.2:6443", seed, "10.0.0.1:6443"}, other.known()); diff != "" {
		t.Errorf("known after a restart with another --server (-want +got):\n%s", diff)
	}

	// A server leaves, one joins: those known keep their place (the one
	// in use first), the new one comes last, --server stays.
	s.demote(seed)
	ep.Subsets[0].Addresses = []corev1.EndpointAddress{{IP: "10.0.0.3"}, {IP: "10.0.0.2"}}
	if _, err := client.CoreV1().Endpoints("default").Update(ctx, ep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.refresh(ctx, client); err != nil {
		t.Fatal(err)
	}
	want = []string{"10.0.0.2:6443", seed, "10.0.0.3:6443"}
	if diff := cmp.Diff(want, s.known()); diff != "" {
		t.Errorf("known after a second refresh (-want +got):\n%s", diff)
	}
	if kept, err := readAddrs(file); err != nil || !cmp.Equal(kept, want) {
		t.Errorf("kept %v, %v; want %v", kept, err, want)
	}

	// No addresses, or no Endpoints at all, say nothing: the list stays.
	ep.Subsets = nil
	if _, err := client.CoreV1().Endpoints("default").Update(ctx, ep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.refresh(ctx, client); err != nil {
		t.Fatal(err)
	}
	if err := s.refresh(ctx, fake.NewClientset()); err == nil {
		t.Errorf("refresh without the Endpoints: no error")
	}
	if diff := cmp.Diff(want, s.known()); diff != "" {
		t.Errorf("known after empty refreshes (-want +got):\n%s", diff)
	}
}

// Start polls until ctx ends, and returns then.
func TestRefreshLoop(t *testing.T) {
	client := fake.NewClientset(&corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes"},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "fd00::1"}},
			Ports: []corev1.EndpointPort{{Port: 6443}}}},
	})
	s := testServers(t, "10.0.0.1:6443")
	s.refreshPeriod = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Start(ctx, client)
	}()
	want := []string{"10.0.0.1:6443", "[fd00::1]:6443"}
	deadline := time.Now().Add(10 * time.Second)
	for !cmp.Equal(s.known(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("known %v, want %v", s.known(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return after its context ended")
	}
}
