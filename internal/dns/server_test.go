package dns

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

// fakeUpstream is a resolver on 127.0.0.1 answering from a table; the
// tests never reach a real one.
type fakeUpstream struct {
	addr       string
	udpQueries atomic.Int32
	tcpQueries atomic.Int32
}

// upstreamTXT is how many TXT records big.example. has: more than a
// 512-byte UDP answer holds.
const upstreamTXT = 40

func startUpstream(t testing.TB) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{}
	l, err := listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = l.udp.LocalAddr().String()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		_, tcp := w.RemoteAddr().(*net.TCPAddr)
		if tcp {
			u.tcpQueries.Add(1)
		} else {
			u.udpQueries.Add(1)
		}
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		q := r.Question[0]
		switch {
		case q.Name == "upstream.example.com." && q.Qtype == dns.TypeA:
			m.Answer = append(m.Answer, rr(t, "upstream.example.com. 60 IN A 198.51.100.7"))
		case q.Name == "example.org." && q.Qtype == dns.TypeA:
			m.Answer = append(m.Answer, rr(t, "example.org. 60 IN A 198.51.100.1"))
		case q.Name == "1.100.51.198.in-addr.arpa." && q.Qtype == dns.TypePTR:
			m.Answer = append(m.Answer, rr(t, "1.100.51.198.in-addr.arpa. 60 IN PTR example.org."))
		case q.Name == "big.example." && q.Qtype == dns.TypeTXT:
			for i := range upstreamTXT {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
					Txt: []string{strings.Repeat("x", 20) + string(rune('a'+i%26))}})
			}
		default:
			m.Rcode = dns.RcodeNameError
		}
		if !tcp {
			m.Truncate(dns.MinMsgSize)
		}
		_ = w.WriteMsg(m)
	})
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // runs after the Shutdowns below (cleanups run last first)
	for _, srv := range []*dns.Server{{PacketConn: l.udp, Handler: h}, {Listener: l.tcp, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		wg.Add(1)
		go func() { defer wg.Done(); _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return u
}

func rr(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("record %q: %v", s, err)
	}
	return r
}

// startServer runs a Server on 127.0.0.1:0 over a fake clientset holding
// objs, and waits until it is ready.
func startServer(t testing.TB, upstreams []string, objs ...runtime.Object) (*Server, *fake.Clientset) {
	t.Helper()
	return startServerWith(t, Config{Upstreams: upstreams}, objs...)
}

// startServerWith is startServer with cfg's upstreams and registerer.
func startServerWith(t testing.TB, cfg Config, objs ...runtime.Object) (*Server, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset(objs...)
	// Without upstreams New reads ResolvConf: an empty one, never the
	// machine's.
	resolvConf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolvConf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Addrs: []string{"127.0.0.1:0"}, Domain: "cluster.local", Upstreams: cfg.Upstreams,
		ResolvConf: resolvConf, Client: cs, Registerer: cfg.Registerer})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Start returned before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready after 10s")
	}
	return s, cs
}

func query(t *testing.T, addr, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return resp
}

// result is what the tests compare: the rcode and the records as text,
// sorted (headless answers are shuffled), the SOA's serial zeroed.
type result struct {
	Rcode  string
	Answer []string
	Ns     []string
	Extra  []string
}

func summarize(m *dns.Msg) result {
	text := func(rrs []dns.RR) []string {
		var out []string
		for _, r := range rrs {
			if _, ok := r.(*dns.OPT); ok {
				continue
			}
			if soa, ok := r.(*dns.SOA); ok {
				c := *soa
				c.Serial = 0
				r = &c
			}
			out = append(out, strings.ReplaceAll(r.String(), "\t", " "))
		}
		slices.Sort(out)
		return out
	}
	return result{Rcode: dns.RcodeToString[m.Rcode], Answer: text(m.Answer), Ns: text(m.Ns), Extra: text(m.Extra)}
}

func ptrTo[T any](v T) *T { return &v }

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func service(ns, name, clusterIP string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}, Ports: ports},
	}
}

func externalName(ns, name, target string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: target},
	}
}

type testEndpoint struct {
	ip, hostname string
	ready        bool
}

func slice(ns, svc, name string, ports []discoveryv1.EndpointPort, eps ...testEndpoint) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ports,
	}
	for _, e := range eps {
		ep := discoveryv1.Endpoint{Addresses: []string{e.ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(e.ready)}}
		if e.hostname != "" {
			ep.Hostname = ptrTo(e.hostname)
		}
		es.Endpoints = append(es.Endpoints, ep)
	}
	return es
}

const soaText = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 0 7200 1800 86400 5"

func clusterObjects() []runtime.Object {
	web := service("ns1", "web", "10.43.0.20",
		corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
		corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP})
	db := service("ns1", "db", corev1.ClusterIPNone, corev1.ServicePort{Name: "mysql", Port: 3306, Protocol: corev1.ProtocolTCP})
	nobody := service("ns1", "nobody", corev1.ClusterIPNone)
	web6 := service("ns1", "web6", "fd00:43::20", corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP})
	return []runtime.Object{
		namespace("default"), namespace("ns1"), namespace("kube-system"),
		service("kube-system", "kube-dns", "10.43.0.10", corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}),
		web, db, nobody, web6,
		externalName("ns1", "ext", "upstream.example.com"),
		externalName("ns1", "alias", "web.ns1.svc.cluster.local"),
		slice("ns1", "db", "db-abc",
			[]discoveryv1.EndpointPort{{Name: ptrTo("mysql"), Port: ptrTo[int32](3306), Protocol: ptrTo(corev1.ProtocolTCP)}},
			testEndpoint{ip: "10.42.0.5", hostname: "db-0", ready: true},
			testEndpoint{ip: "10.42.0.6", ready: true},
			testEndpoint{ip: "10.42.0.7", ready: false}),
		slice("ns1", "web", "web-abc",
			[]discoveryv1.EndpointPort{{Name: ptrTo("http"), Port: ptrTo[int32](8080), Protocol: ptrTo(corev1.ProtocolTCP)}},
			testEndpoint{ip: "10.42.0.8", ready: true}),
	}
}

func TestAnswers(t *testing.T) {
	up := startUpstream(t)
	s, _ := startServer(t, []string{up.addr}, clusterObjects()...)
	addr := s.Addrs()[0]
	nodata := result{Rcode: "NOERROR", Ns: []string{soaText}}
	nxdomain := result{Rcode: "NXDOMAIN", Ns: []string{soaText}}
	tests := []struct {
		name  string
		qname string
		qtype uint16
		want  result
	}{
		{"cluster IP", "web.ns1.svc.cluster.local.", dns.TypeA,
			result{Rcode: "NOERROR", Answer: []string{"web.ns1.svc.cluster.local. 5 IN A 10.43.0.20"}}},
		{"case kept in the answer", "Web.NS1.svc.Cluster.Local.", dns.TypeA,
			result{Rcode: "NOERROR", Answer: []string{"Web.NS1.svc.Cluster.Local. 5 IN A 10.43.0.20"}}},
		{"cluster IP, other family: NODATA", "web.ns1.svc.cluster.local.", dns.TypeAAAA, nodata},
		{"cluster IP, other type: NODATA", "web.ns1.svc.cluster.local.", dns.TypeTXT, nodata},
		{"IPv6 cluster IP", "web6.ns1.svc.cluster.local.", dns.TypeAAAA,
			result{Rcode: "NOERROR", Answer: []string{"web6.ns1.svc.cluster.local. 5 IN AAAA fd00:43::20"}}},
		{"endpoint of a cluster IP service", "10-42-0-8.web.ns1.svc.cluster.local.", dns.TypeA,
			result{Rcode: "NOERROR", Answer: []string{"10-42-0-8.web.ns1.svc.cluster.local. 5 IN A 10.42.0.8"}}},
		{"headless: ready endpoints", "db.ns1.svc.cluster.local.", dns.TypeA,
			result{Rcode: "NOERROR", Answer: []string{"db.ns1.svc.cluster.local. 5 IN A 10.42.0.5", "db.ns1.svc.cluster.local. 5 IN A 10.42.0.6"}}},
		{"headless endpoint by hostname", "db-0.db.ns1.svc.cluster.local.", dns.TypeA,
			result{Rcode: "NOERROR", Answer: []string{"db-0.db.ns1.svc.cluster.local. 5 IN A 10.42.0.5"}}},
		{"headless endpoint by dashed address", "10-42-0-6.db.ns1.svc.cluster.local.", dns.TypeA,
			result{Rcode: "NOERROR", Answer: []string{"10-42-0-6.db.ns1.svc.cluster.local. 5 IN A 10.42.0.6"}}},
		{"not ready endpoint", "10-42-0-7.db.ns1.svc.cluster.local.", dns.TypeA, nxdomain},
		{"headless without endpoints", "nobody.ns1.svc.cluster.local.", dns.TypeA, nxdomain},
		{"SRV of a named port", "_http._tcp.web.ns1.svc.cluster.local.", dns.TypeSRV,
			result{Rcode: "NOERROR",
				Answer: []string{"_http._tcp.web.ns1.svc.cluster.local. 5 IN SRV 0 100 80 web.ns1.svc.cluster.local."},
				Extra:  []string{"web.ns1.svc.cluster.local. 5 IN A 10.43.0.20"}}},
		{"SRV of a UDP port", "_dns._udp.web.ns1.svc.cluster.local.", dns.TypeSRV,
			result{Rcode: "NOERROR",
				Answer: []string{"_dns._udp.web.ns1.svc.cluster.local. 5 IN SRV 0 100 53 web.ns1.svc.cluster.local."},
				Extra:  []string{"web.ns1.svc.cluster.local. 5 IN A 10.43.0.20"}}},
		{"SRV of every port", "web.ns1.svc.cluster.local.", dns.TypeSRV,
			result{Rcode: "NOERROR",
				Answer: []string{"web.ns1.svc.cluster.local. 5 IN SRV 0 50 53 web.ns1.svc.cluster.local.", "web.ns1.svc.cluster.local. 5 IN SRV 0 50 80 web.ns1.svc.cluster.local."},
				Extra:  []string{"web.ns1.svc.cluster.local. 5 IN A 10.43.0.20"}}},
		{"SRV of a port of another protocol", "_http._udp.web.ns1.svc.cluster.local.", dns.TypeSRV, nxdomain},
		{"SRV of an unknown port", "_nope._tcp.web.ns1.svc.cluster.local.", dns.TypeSRV, nxdomain},
		{"headless SRV: one per endpoint", "_mysql._tcp.db.ns1.svc.cluster.local.", dns.TypeSRV,
			result{Rcode: "NOERROR",
				Answer: []string{
					"_mysql._tcp.db.ns1.svc.cluster.local. 5 IN SRV 0 50 3306 10-42-0-6.db.ns1.svc.cluster.local.",
					"_mysql._tcp.db.ns1.svc.cluster.local. 5 IN SRV 0 50 3306 db-0.db.ns1.svc.cluster.local.",
				},
				Extra: []string{"10-42-0-6.db.ns1.svc.cluster.local. 5 IN A 10.42.0.6", "db-0.db.ns1.svc.cluster.local. 5 IN A 10.42.0.5"}}},
		{"PTR of a cluster IP", "20.0.43.10.in-addr.arpa.", dns.TypePTR,
			result{Rcode: "NOERROR", Answer: []string{"20.0.43.10.in-addr.arpa. 5 IN PTR web.ns1.svc.cluster.local."}}},
		{"PTR of an IPv6 cluster IP", mustReverse(t, "fd00:43::20"), dns.TypePTR,
			result{Rcode: "NOERROR", Answer: []string{mustReverse(t, "fd00:43::20") + " 5 IN PTR web6.ns1.svc.cluster.local."}}},
		{"PTR of a headless endpoint with hostname", "5.0.42.10.in-addr.arpa.", dns.TypePTR,
			result{Rcode: "NOERROR", Answer: []string{"5.0.42.10.in-addr.arpa. 5 IN PTR db-0.db.ns1.svc.cluster.local."}}},
		{"PTR of an endpoint without hostname", "6.0.42.10.in-addr.arpa.", dns.TypePTR,
			result{Rcode: "NOERROR", Answer: []string{"6.0.42.10.in-addr.arpa. 5 IN PTR 10-42-0-6.db.ns1.svc.cluster.local."}}},
		{"PTR of another address: forwarded", "1.100.51.198.in-addr.arpa.", dns.TypePTR,
			result{Rcode: "NOERROR", Answer: []string{"1.100.51.198.in-addr.arpa. 60 IN PTR example.org."}}},
		{"ExternalName: CNAME", "ext.ns1.svc.cluster.local.", dns.TypeCNAME,
			result{Rcode: "NOERROR", Answer: []string{"ext.ns1.svc.cluster.local. 5 IN CNAME upstream.example.com."}}},
		{"ExternalName: A chased upstream", "ext.ns1.svc.cluster.local.", dns.TypeA,
			result{Rcode: "NOERROR", Answer: []string{"ext.ns1.svc.cluster.local. 5 IN CNAME upstream.example.com.", "upstream.example.com. 60 IN A 198.51.100.7"}}},
		{"ExternalName in the cluster domain", "alias.ns1.svc.cluster.local.", dns.TypeA,
			result{Rcode: "NOERROR", Answer: []string{"alias.ns1.svc.cluster.local. 5 IN CNAME web.ns1.svc.cluster.local.", "web.ns1.svc.cluster.local. 5 IN A 10.43.0.20"}}},
		{"ExternalName has no endpoints", "x.ext.ns1.svc.cluster.local.", dns.TypeA, nxdomain},
		{"pod", "10-42-0-9.ns1.pod.cluster.local.", dns.TypeA,
			result{Rcode: "NOERROR", Answer: []string{"10-42-0-9.ns1.pod.cluster.local. 5 IN A 10.42.0.9"}}},
		{"pod, IPv6", "fd00-42--9.ns1.pod.cluster.local.", dns.TypeAAAA,
			result{Rcode: "NOERROR", Answer: []string{"fd00-42--9.ns1.pod.cluster.local. 5 IN AAAA fd00:42::9"}}},
		{"pod, other family", "10-42-0-9.ns1.pod.cluster.local.", dns.TypeAAAA, nodata},
		{"pod, not an address", "web.ns1.pod.cluster.local.", dns.TypeA, nxdomain},
		{"pod, no such namespace", "10-42-0-9.nope.pod.cluster.local.", dns.TypeA, nxdomain},
		{"no such service", "missing.ns1.svc.cluster.local.", dns.TypeA, nxdomain},
		{"no such namespace", "web.nope.svc.cluster.local.", dns.TypeA, nxdomain},
		{"namespace", "ns1.svc.cluster.local.", dns.TypeA, nodata},
		{"namespace that does not exist", "nope.svc.cluster.local.", dns.TypeA, nxdomain},
		{"svc", "svc.cluster.local.", dns.TypeA, nodata},
		{"too many labels", "a.b.c.web.ns1.svc.cluster.local.", dns.TypeA, nxdomain},
		{"neither svc nor pod", "web.ns1.cluster.local.", dns.TypeA, nxdomain},
		{"apex SOA", "cluster.local.", dns.TypeSOA, result{Rcode: "NOERROR", Answer: []string{soaText}}},
		{"apex NS", "cluster.local.", dns.TypeNS,
			result{Rcode: "NOERROR", Answer: []string{"cluster.local. 5 IN NS ns.dns.cluster.local."},
				Extra: []string{"ns.dns.cluster.local. 5 IN A 10.43.0.10"}}},
		{"apex A", "cluster.local.", dns.TypeA, nodata},
		{"ns.dns", "ns.dns.cluster.local.", dns.TypeA,
			result{Rcode: "NOERROR", Answer: []string{"ns.dns.cluster.local. 5 IN A 10.43.0.10"}}},
		{"dns-version", "dns-version.cluster.local.", dns.TypeTXT,
			result{Rcode: "NOERROR", Answer: []string{`dns-version.cluster.local. 5 IN TXT "1.1.0"`}}},
		{"forwarded", "example.org.", dns.TypeA,
			result{Rcode: "NOERROR", Answer: []string{"example.org. 60 IN A 198.51.100.1"}}},
		{"forwarded NXDOMAIN", "nope.example.org.", dns.TypeA, result{Rcode: "NXDOMAIN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, network := range []string{"udp", "tcp"} {
				resp := query(t, addr, network, tt.qname, tt.qtype)
				if diff := cmp.Diff(tt.want, summarize(resp)); diff != "" {
					t.Errorf("%s %s over %s (-want +got):\n%s", tt.qname, dns.TypeToString[tt.qtype], network, diff)
				}
				inZone := strings.HasSuffix(strings.ToLower(tt.qname), "cluster.local.")
				if inZone && !resp.Authoritative {
					t.Errorf("%s: answer for the cluster domain not authoritative", tt.qname)
				}
			}
		})
	}
}

func mustReverse(t *testing.T, ip string) string {
	t.Helper()
	r, err := dns.ReverseAddr(ip)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestUpdates checks that the answers follow the API: a service created
// after the start appears, a deleted one goes, an endpoint turning ready
// is added.
func TestUpdates(t *testing.T) {
	s, cs := startServer(t, nil, namespace("ns1"))
	addr := s.Addrs()[0]
	ctx := context.Background()
	name := "late.ns1.svc.cluster.local."
	if got := query(t, addr, "udp", name, dns.TypeA).Rcode; got != dns.RcodeNameError {
		t.Fatalf("before the service exists: rcode %s, want NXDOMAIN", dns.RcodeToString[got])
	}
	if _, err := cs.CoreV1().Services("ns1").Create(ctx, service("ns1", "late", "10.43.0.99", corev1.ServicePort{Port: 80}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, addr, name, dns.TypeA, []string{name + " 5 IN A 10.43.0.99"})

	if _, err := cs.CoreV1().Services("ns1").Create(ctx, service("ns1", "hl", corev1.ClusterIPNone), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	es := slice("ns1", "hl", "hl-1", nil, testEndpoint{ip: "10.42.0.30", ready: false})
	if _, err := cs.DiscoveryV1().EndpointSlices("ns1").Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	es.Endpoints[0].Conditions.Ready = ptrTo(true)
	if _, err := cs.DiscoveryV1().EndpointSlices("ns1").Update(ctx, es, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	hl := "hl.ns1.svc.cluster.local."
	waitFor(t, addr, hl, dns.TypeA, []string{hl + " 5 IN A 10.42.0.30"})

	if err := cs.CoreV1().Services("ns1").Delete(ctx, "late", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, addr, name, dns.TypeA, nil)
}

// waitFor polls until the answer to name is want (nil: NXDOMAIN).
func waitFor(t *testing.T, addr, name string, qtype uint16, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got result
	for time.Now().Before(deadline) {
		got = summarize(query(t, addr, "udp", name, qtype))
		if cmp.Equal(want, got.Answer) && (want != nil || got.Rcode == "NXDOMAIN") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: after 10s got %+v, want answer %v", name, got, want)
}

// TestForwarding checks the forwarder: the next upstream is tried when one
// fails, a truncated UDP answer is fetched again over TCP, and the answer
// is truncated again for a UDP client.
func TestForwarding(t *testing.T) {
	up := startUpstream(t)
	// A port nobody listens on: the UDP exchange fails at once (ICMP port
	// unreachable), so the next upstream is tried.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	s, _ := startServer(t, []string{dead, up.addr}, namespace("default"))
	addr := s.Addrs()[0]

	got := summarize(query(t, addr, "udp", "example.org.", dns.TypeA))
	if diff := cmp.Diff([]string{"example.org. 60 IN A 198.51.100.1"}, got.Answer); diff != "" {
		t.Errorf("after a dead upstream (-want +got):\n%s", diff)
	}

	resp := query(t, addr, "tcp", "big.example.", dns.TypeTXT)
	if len(resp.Answer) != upstreamTXT || resp.Truncated {
		t.Errorf("over TCP: %d records, truncated %v; want %d, not truncated", len(resp.Answer), resp.Truncated, upstreamTXT)
	}
	if up.tcpQueries.Load() == 0 {
		t.Errorf("the upstream was never asked over TCP after a truncated UDP answer")
	}
	resp = query(t, addr, "udp", "big.example.", dns.TypeTXT)
	if !resp.Truncated || len(resp.Answer) >= upstreamTXT {
		t.Errorf("over UDP without EDNS: %d records, truncated %v; want fewer than %d, truncated", len(resp.Answer), resp.Truncated, upstreamTXT)
	}
}

func TestNoUpstream(t *testing.T) {
	s, _ := startServer(t, nil, namespace("default")) // an empty resolv.conf
	if got := query(t, s.Addrs()[0], "udp", "example.org.", dns.TypeA).Rcode; got != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[got])
	}
}

func TestNotReady(t *testing.T) {
	s, err := New(Config{Addrs: []string{"127.0.0.1:0"}, Upstreams: []string{"127.0.0.1:1"}, Client: fake.NewClientset()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.closeListeners)
	m := new(dns.Msg).SetQuestion("web.ns1.svc.cluster.local.", dns.TypeA)
	if got, _ := s.answer(m); got.Rcode != dns.RcodeServerFailure {
		t.Errorf("before the informers synced: rcode %s, want SERVFAIL", dns.RcodeToString[got.Rcode])
	}
}

func TestResolvConfUpstreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte("search example\nnameserver 127.0.0.53\nnameserver 127.0.0.54\noptions ndots:5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Addrs: []string{"127.0.0.1:0"}, ResolvConf: path, Client: fake.NewClientset()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.closeListeners)
	if diff := cmp.Diff([]string{"127.0.0.53:53", "127.0.0.54:53"}, s.fwd.upstreams); diff != "" {
		t.Errorf("upstreams (-want +got):\n%s", diff)
	}
}

func TestStartTwice(t *testing.T) {
	s, _ := startServer(t, nil, namespace("default"))
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Errorf("second Start: %v, want already started", err)
	}
}

func TestNewErrors(t *testing.T) {
	cs := fake.NewClientset()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no client", Config{Addrs: []string{"127.0.0.1:0"}}},
		{"no address", Config{Client: cs}},
		{"bad address", Config{Client: cs, Addrs: []string{"nope"}}},
		{"bad domain", Config{Client: cs, Addrs: []string{"127.0.0.1:0"}, Domain: "a..b"}},
		{"missing resolv.conf", Config{Client: cs, Addrs: []string{"127.0.0.1:0"}, ResolvConf: "/nonexistent/resolv.conf"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if err == nil {
				s.closeListeners()
				t.Fatal("New succeeded")
			}
		})
	}
	var opErr *net.OpError
	_, err := New(Config{Client: cs, Addrs: []string{"127.0.0.1:0", "203.0.113.1:53"}})
	if !errors.As(err, &opErr) {
		t.Errorf("an address not on this host: %v, want a net.OpError", err)
	}
}
