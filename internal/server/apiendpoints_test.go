package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/storage"
	"github.com/skiff-io/skiff/internal/storage/storagetest"
)

func TestKubernetesSubsets(t *testing.T) {
	sub := func(port int32, ips ...string) corev1.EndpointSubset {
		ss := corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Name: "https", Port: port, Protocol: corev1.ProtocolTCP}}}
		for _, ip := range ips {
			ss.Addresses = append(ss.Addresses, corev1.EndpointAddress{IP: ip})
		}
		return ss
	}
	for _, tc := range []struct {
		name string
		live []string
		want []corev1.EndpointSubset
		// The slice: its address type, addresses and port; mixed
		// when it leaves some out.
		sliceType  discoveryv1.AddressType
		sliceAddrs []string
		slicePort  int32
		mixed      bool
	}{
		{"none", nil, nil, "", nil, 0, false},
		{"only loopback and link-local", []string{"127.0.0.1:6443", "[::1]:6443", "169.254.1.1:6443", "0.0.0.0:6443"}, nil, "", nil, 0, false},
		{"one", []string{"10.0.0.1:6443"}, []corev1.EndpointSubset{sub(6443, "10.0.0.1")},
			discoveryv1.AddressTypeIPv4, []string{"10.0.0.1"}, 6443, false},
		{"sorted as addresses, duplicates once", []string{"10.0.0.10:6443", "10.0.0.9:6443", "10.0.0.10:6443", "127.0.0.1:6443"},
			[]corev1.EndpointSubset{sub(6443, "10.0.0.9", "10.0.0.10")},
			discoveryv1.AddressTypeIPv4, []string{"10.0.0.9", "10.0.0.10"}, 6443, false},
		{"ipv6", []string{"[fd00::2]:6443", "[fd00::1]:6443"}, []corev1.EndpointSubset{sub(6443, "fd00::1", "fd00::2")},
			discoveryv1.AddressTypeIPv6, []string{"fd00::1", "fd00::2"}, 6443, false},
		{"ipv4-mapped is ipv4", []string{"[::ffff:10.0.0.1]:6443"}, []corev1.EndpointSubset{sub(6443, "10.0.0.1")},
			discoveryv1.AddressTypeIPv4, []string{"10.0.0.1"}, 6443, false},
		{"both families", []string{"[fd00::1]:6443", "10.0.0.1:6443"}, []corev1.EndpointSubset{sub(6443, "10.0.0.1", "fd00::1")},
			discoveryv1.AddressTypeIPv4, []string{"10.0.0.1"}, 6443, true},
		{"two ports", []string{"10.0.0.2:7443", "10.0.0.1:6443", "10.0.0.3:6443"},
			[]corev1.EndpointSubset{sub(6443, "10.0.0.1", "10.0.0.3"), sub(7443, "10.0.0.2")},
			discoveryv1.AddressTypeIPv4, []string{"10.0.0.1", "10.0.0.3"}, 6443, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var live []netip.AddrPort
			for _, s := range tc.live {
				live = append(live, netip.MustParseAddrPort(s))
			}
			got := kubernetesSubsets(live)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("subsets (-want +got):\n%s", diff)
			}
			if len(got) == 0 {
				return
			}
			addrType, eps, ports, mixed := kubernetesSlice(got)
			var addrs []string
			for _, ep := range eps {
				if len(ep.Addresses) != 1 || ep.Conditions.Ready == nil || !*ep.Conditions.Ready {
					t.Fatalf("endpoint %+v: want one ready address", ep)
				}
				addrs = append(addrs, ep.Addresses[0])
			}
			if addrType != tc.sliceType || !slices.Equal(addrs, tc.sliceAddrs) || mixed != tc.mixed ||
				len(ports) != 1 || *ports[0].Port != tc.slicePort || *ports[0].Name != "https" || *ports[0].Protocol != corev1.ProtocolTCP {
				t.Fatalf("slice %s %v %+v mixed %v; want %s %v port %d mixed %v", addrType, addrs, ports, mixed, tc.sliceType, tc.sliceAddrs, tc.slicePort, tc.mixed)
			}
		})
	}
}

// endpointsHarness is a real API server on a test etcd, reached in
// process, and the API servers taking part in the endpoints: each with
// its own etcd and API clients, so that one can be killed alone.
type endpointsHarness struct {
	t    *testing.T
	etcd *clientv3.Client
	api  *apiserver.Server
	ids  *loopbackIdentities
	// client reads what the servers wrote.
	client kubernetes.Interface
}

func newEndpointsHarness(t *testing.T) *endpointsHarness {
	t.Helper()
	etcd := storagetest.StartEtcd(t)
	ids := newLoopbackIdentities()
	api, err := apiserver.New(apiserver.Config{
		Resources:     Resources(),
		NewStorage:    func(sc storage.Config) (storage.Interface, error) { return storage.NewStore(etcd, sc), nil },
		Authenticator: ids,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &endpointsHarness{t: t, etcd: etcd, api: api, ids: ids}
	h.client = h.clientset(apiserver.InProcessTransport(api))
	return h
}

func (h *endpointsHarness) clientset(rt http.RoundTripper) kubernetes.Interface {
	h.t.Helper()
	cfg, err := h.ids.config(&rest.Config{Host: "https://apiserver.test", Transport: rt, QPS: -1}, userAPIServer)
	if err != nil {
		h.t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return cs
}

// testAPIServer is one API server's part: runAPIEndpoints's loop with
// short periods.
type testAPIServer struct {
	a      *apiEndpoints
	etcd   *clientv3.Client
	rt     *killableTransport
	cancel context.CancelFunc
	done   chan struct{}
}

func (h *endpointsHarness) start(addrPort string) *testAPIServer {
	h.t.Helper()
	return h.startNotReady(addrPort, false)
}

// startNotReady starts a server whose /readyz fails while notReady.
func (h *endpointsHarness) startNotReady(addrPort string, notReady bool) *testAPIServer {
	h.t.Helper()
	etcd, err := clientv3.New(clientv3.Config{Endpoints: h.etcd.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = etcd.Close() })
	rt := &killableTransport{next: apiserver.InProcessTransport(h.api)}
	rt.notReady.Store(notReady)
	a := newAPIEndpoints(etcd, h.clientset(rt), netip.MustParseAddrPort(addrPort), "host-"+strings.NewReplacer(".", "-", ":", "-").Replace(addrPort), slog.New(slog.NewTextHandler(testLogWriter{h.t}, nil)).With("server", addrPort))
	// etcd grants no TTL under 1.5s (its election timeout's 3/2): 2s.
	a.ttl, a.resync, a.stopTimeout = 2*time.Second, 300*time.Millisecond, 5*time.Second
	a.identityRenew, a.identityDuration, a.identityGC = 200*time.Millisecond, time.Second, 300*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	s := &testAPIServer{a: a, etcd: etcd, rt: rt, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := a.run(ctx); err != nil {
			h.t.Errorf("run %s: %v", addrPort, err)
		}
	}()
	h.t.Cleanup(s.stop)
	return s
}

// stop stops the server gracefully and waits for run to return.
func (s *testAPIServer) stop() {
	s.cancel()
	<-s.done
}

// kill ends the server as SIGKILL would: its etcd connection (and with
// it the lease's keep-alive) and its API client stop working before its
// loop notices, so nothing is cleaned up. The loop's own end is left to
// the test's cleanup.
func (s *testAPIServer) kill() {
	s.rt.dead.Store(true)
	_ = s.etcd.Close()
	s.cancel()
}

// testLogWriter sends a server's log to the test's.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// killableTransport fails every request once dead, answers /readyz
// with 500 while notReady, and counts the writes to the kubernetes
// Endpoints and EndpointSlice.
type killableTransport struct {
	next     http.RoundTripper
	dead     atomic.Bool
	notReady atomic.Bool
	writes   atomic.Int64
}

func (k *killableTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if k.dead.Load() {
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
			_ = r.Body.Close()
		}
		return nil, errors.New("killed")
	}
	if k.notReady.Load() && r.URL.Path == "/readyz" {
		return &http.Response{StatusCode: http.StatusInternalServerError, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("not ready")), Request: r}, nil
	}
	if r.Method != http.MethodGet && (strings.Contains(r.URL.Path, "/endpoints") || strings.Contains(r.URL.Path, "/endpointslices")) {
		k.writes.Add(1)
	}
	return k.next.RoundTrip(r)
}

// listed is what the Endpoints and the EndpointSlice list: "ip:port"
// each, in their order; nil when missing.
func (h *endpointsHarness) listed(ctx context.Context) (endpoints, slice []string, err error) {
	ep, err := h.client.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, nil, err
	}
	if err == nil {
		if ep.Labels[labelSkipMirror] != "true" || ep.Labels["provider"] != "kubernetes" {
			return nil, nil, errors.New("endpoints without their labels: " + strings.Join(slices.Sorted(maps.Keys(ep.Labels)), ","))
		}
		for _, ss := range ep.Subsets {
			for _, a := range ss.Addresses {
				for _, p := range ss.Ports {
					endpoints = append(endpoints, netip.AddrPortFrom(netip.MustParseAddr(a.IP), uint16(p.Port)).String())
				}
			}
		}
	}
	sl, err := h.client.DiscoveryV1().EndpointSlices("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, nil, err
	}
	if err == nil {
		if sl.Labels[discoveryv1.LabelServiceName] != "kubernetes" || sl.Labels[discoveryv1.LabelManagedBy] != "skiff-apiserver" {
			return nil, nil, errors.New("endpointslice without its labels")
		}
		for _, e := range sl.Endpoints {
			for _, p := range sl.Ports {
				slice = append(slice, netip.AddrPortFrom(netip.MustParseAddr(e.Addresses[0]), uint16(*p.Port)).String())
			}
		}
	}
	return endpoints, slice, nil
}

// waitListed waits until both list want.
func (h *endpointsHarness) waitListed(want []string, timeout time.Duration) {
	h.t.Helper()
	var ep, sl []string
	var lastErr error
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ep, sl, lastErr = h.listed(ctx)
		return lastErr == nil && slices.Equal(ep, want) && slices.Equal(sl, want), nil
	})
	if err != nil {
		h.t.Fatalf("after %v the kubernetes Endpoints list %v and the EndpointSlice %v (%v); want %v", timeout, ep, sl, lastErr, want)
	}
}

// identities are the identity Leases' names and holders.
func (h *endpointsHarness) identities() map[string]string {
	h.t.Helper()
	list, err := h.client.CoordinationV1().Leases("kube-system").List(context.Background(), metav1.ListOptions{LabelSelector: "apiserver.kubernetes.io/identity=kube-apiserver"})
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range list.Items {
		out[l.Name] = ptrString(l.Spec.HolderIdentity)
	}
	return out
}

func (h *endpointsHarness) waitIdentities(want ...*testAPIServer) {
	h.t.Helper()
	wantMap := map[string]string{}
	for _, s := range want {
		wantMap[s.a.identityName] = s.a.identityHolder
	}
	var got map[string]string
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		got = h.identities()
		return cmp.Equal(got, wantMap), nil
	})
	if err != nil {
		h.t.Fatalf("identity Leases %v, want %v", got, wantMap)
	}
}

// waitPasses waits until every server has run n more endpoint passes.
func waitPasses(t *testing.T, n int64, servers ...*testAPIServer) {
	t.Helper()
	from := make([]int64, len(servers))
	for i, s := range servers {
		from[i] = s.a.passes.Load()
	}
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		for i, s := range servers {
			if s.a.passes.Load() < from[i]+n {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the servers did not run %d passes", n)
	}
}

func TestAPIEndpointsListLiveServers(t *testing.T) {
	h := newEndpointsHarness(t)
	a := h.start("10.0.0.1:6443")
	b := h.start("10.0.0.2:6443")
	h.waitListed([]string{"10.0.0.1:6443", "10.0.0.2:6443"}, 10*time.Second)
	h.waitIdentities(a, b)

	// Nothing changes: nothing is written.
	writes := a.rt.writes.Load() + b.rt.writes.Load()
	waitPasses(t, 3, a, b)
	if w := a.rt.writes.Load() + b.rt.writes.Load() - writes; w != 0 {
		t.Fatalf("%d writes to the kubernetes Endpoints or EndpointSlice while nothing changed", w)
	}

	// A key deleted from under its server is put back.
	if _, err := h.etcd.Delete(context.Background(), apiServerLeasePrefix+"10.0.0.2:6443"); err != nil {
		t.Fatal(err)
	}
	waitPasses(t, 2, a, b)
	h.waitListed([]string{"10.0.0.1:6443", "10.0.0.2:6443"}, 10*time.Second)
	if resp, err := h.etcd.Get(context.Background(), apiServerLeasePrefix+"10.0.0.2:6443"); err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Fatalf("the deleted key is not back with a lease: %v %v", resp, err)
	}

	// A server killed leaves when its etcd lease expires.
	c := h.start("10.0.0.3:6443")
	h.waitListed([]string{"10.0.0.1:6443", "10.0.0.2:6443", "10.0.0.3:6443"}, 10*time.Second)
	h.waitIdentities(a, b, c)
	killed := time.Now()
	c.kill()
	h.waitListed([]string{"10.0.0.1:6443", "10.0.0.2:6443"}, c.a.ttl+c.a.resync+3*time.Second)
	t.Logf("killed server gone from the endpoints after %v (TTL %v, resync %v)", time.Since(killed), c.a.ttl, c.a.resync)
	// Its identity Lease, unrenewed, is collected.
	h.waitIdentities(a, b)

	// A server stopped gracefully is gone once it has returned.
	a.stop()
	ep, sl, err := h.listed(context.Background())
	if err != nil || !slices.Equal(ep, []string{"10.0.0.2:6443"}) || !slices.Equal(sl, []string{"10.0.0.2:6443"}) {
		t.Fatalf("after a graceful stop the Endpoints list %v and the EndpointSlice %v (%v); want 10.0.0.2:6443 alone", ep, sl, err)
	}
	if got := h.identities(); len(got) != 1 || got[b.a.identityName] == "" {
		t.Fatalf("after a graceful stop the identity Leases are %v; want %s's alone", got, b.a.self)
	}
	if resp, err := h.etcd.Get(context.Background(), apiServerLeasePrefix, clientv3.WithPrefix()); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("etcd keys after a graceful stop: %v %v", resp, err)
	}

	// The last one stopping leaves its address: an empty list never
	// erases the endpoints.
	b.stop()
	if ep, sl, err := h.listed(context.Background()); err != nil || !slices.Equal(ep, []string{"10.0.0.2:6443"}) || !slices.Equal(sl, []string{"10.0.0.2:6443"}) {
		t.Fatalf("after the last server stopped the Endpoints list %v and the EndpointSlice %v (%v); want them left", ep, sl, err)
	}
	if resp, err := h.etcd.Get(context.Background(), apiServerLeasePrefix, clientv3.WithPrefix()); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("etcd keys after every server stopped: %v %v", resp, err)
	}
}

// TestAPIEndpointsConverge: servers starting together, each writing with
// optimistic concurrency, agree on one list and then stop writing.
func TestAPIEndpointsConverge(t *testing.T) {
	h := newEndpointsHarness(t)
	var servers []*testAPIServer
	var want []string
	for _, ap := range []string{"10.0.0.5:6443", "10.0.0.14:6443", "10.0.0.3:6443", "10.0.0.22:6443", "10.0.0.1:6443"} {
		servers = append(servers, h.start(ap))
		want = append(want, ap)
	}
	slices.SortFunc(want, func(x, y string) int {
		return netip.MustParseAddrPort(x).Compare(netip.MustParseAddrPort(y))
	})
	h.waitListed(want, 10*time.Second)
	h.waitIdentities(servers...)
	waitPasses(t, 1, servers...)
	var writes int64
	for _, s := range servers {
		writes += s.rt.writes.Load()
	}
	waitPasses(t, 3, servers...)
	for _, s := range servers {
		writes -= s.rt.writes.Load()
	}
	if writes != 0 {
		t.Fatalf("%d writes after the servers agreed", -writes)
	}
	ep, err := h.client.CoreV1().Endpoints("default").Get(context.Background(), "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}, {IP: "10.0.0.3"}, {IP: "10.0.0.5"}, {IP: "10.0.0.14"}, {IP: "10.0.0.22"}},
		Ports:     []corev1.EndpointPort{{Name: "https", Port: 6443, Protocol: corev1.ProtocolTCP}},
	}}, ep.Subsets); diff != "" {
		t.Fatalf("subsets (-want +got):\n%s", diff)
	}
}

// TestAPIEndpointsLoopback: a server bound to loopback publishes no
// endpoint (and holds no key), but has its identity Lease.
func TestAPIEndpointsLoopback(t *testing.T) {
	h := newEndpointsHarness(t)
	s := h.start("127.0.0.1:6443")
	h.waitIdentities(s)
	if ep, sl, err := h.listed(context.Background()); err != nil || ep != nil || sl != nil {
		t.Fatalf("a loopback server published Endpoints %v, EndpointSlice %v (%v)", ep, sl, err)
	}
	if resp, err := h.etcd.Get(context.Background(), apiServerLeasePrefix, clientv3.WithPrefix()); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("a loopback server holds etcd keys: %v %v", resp, err)
	}
	s.stop()
	if got := h.identities(); len(got) != 0 {
		t.Fatalf("identity Leases after a graceful stop: %v", got)
	}
}

// TestAPIEndpointsRestartAfterKill: a server restarted after a kill,
// within its former key's TTL, takes its address out until it is ready.
func TestAPIEndpointsRestartAfterKill(t *testing.T) {
	h := newEndpointsHarness(t)
	a := h.start("10.0.0.1:6443")
	// What the killed run left: its key, on a lease still alive.
	lease, err := h.etcd.Grant(context.Background(), 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.etcd.Put(context.Background(), apiServerLeasePrefix+"10.0.0.2:6443", "10.0.0.2:6443", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	h.waitListed([]string{"10.0.0.1:6443", "10.0.0.2:6443"}, 10*time.Second)

	b := h.startNotReady("10.0.0.2:6443", true)
	h.waitListed([]string{"10.0.0.1:6443"}, 10*time.Second)
	waitPasses(t, 1, a)
	if ep, _, err := h.listed(context.Background()); err != nil || len(ep) != 1 {
		t.Fatalf("a server not ready yet is listed: %v (%v)", ep, err)
	}
	b.rt.notReady.Store(false)
	h.waitListed([]string{"10.0.0.1:6443", "10.0.0.2:6443"}, 10*time.Second)
}
