package dns

import (
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes/fake"
)

// gather returns every series in reg as name{label="value",...}, labels
// sorted by name, to its value: a counter's, or a histogram's sample
// count.
func gather(t testing.TB, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, l.GetName()+"="+`"`+l.GetValue()+`"`)
			}
			key := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Histogram != nil:
				out[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

// waitSeries polls reg until every series in want has its value (the
// server records a query after it has written the answer).
func waitSeries(t *testing.T, reg prometheus.Gatherer, want map[string]float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := gather(t, reg)
		missing := map[string]float64{}
		for k, v := range want {
			if got[k] != v {
				missing[k] = v
			}
		}
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			mine := map[string]float64{}
			for k := range missing {
				mine[k] = got[k]
			}
			t.Fatalf("series (-want +got):\n%s\nall series:\n%s", cmp.Diff(missing, mine), dumpSeries(got))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dumpSeries(m map[string]float64) string {
	var lines []string
	for k, v := range m {
		lines = append(lines, k+" "+strconv.FormatFloat(v, 'g', -1, 64))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestMetrics answers cluster names (found, NXDOMAIN, a PTR), forwarded
// names (found, NXDOMAIN) and an uncommon type over UDP and TCP, and
// checks CoreDNS's series for them, label by label.
func TestMetrics(t *testing.T) {
	up := startUpstream(t)
	reg := prometheus.NewRegistry()
	s, _ := startServerWith(t, Config{Upstreams: []string{up.addr}, Registerer: reg}, clusterObjects()...)
	addr := s.Addrs()[0]
	server := `server="dns://` + addr + `"`

	for _, q := range []struct {
		network, name string
		qtype         uint16
		rcode         int
	}{
		{"udp", "web.ns1.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess},
		{"udp", "web.ns1.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess},
		{"tcp", "_http._tcp.web.ns1.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess},
		{"udp", "missing.ns1.svc.cluster.local.", dns.TypeA, dns.RcodeNameError},
		{"udp", "web.ns1.svc.cluster.local.", dns.TypeCAA, dns.RcodeSuccess},
		{"udp", "20.0.43.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess},
		{"udp", "example.org.", dns.TypeA, dns.RcodeSuccess},
		{"udp", "nope.example.org.", dns.TypeA, dns.RcodeNameError},
	} {
		if got := query(t, addr, q.network, q.name, q.qtype).Rcode; got != q.rcode {
			t.Fatalf("%s %s: rcode %s, want %s", q.name, dns.TypeToString[q.qtype], dns.RcodeToString[got], dns.RcodeToString[q.rcode])
		}
	}

	cluster := server + `,view="",zone="cluster.local."`
	root := server + `,view="",zone="."`
	to := `to="` + up.addr + `"`
	got := waitSeries(t, reg, map[string]float64{
		`coredns_dns_requests_total{family="1",proto="udp",` + server + `,type="A",view="",zone="cluster.local."}`:     3,
		`coredns_dns_requests_total{family="1",proto="tcp",` + server + `,type="SRV",view="",zone="cluster.local."}`:   1,
		`coredns_dns_requests_total{family="1",proto="udp",` + server + `,type="other",view="",zone="cluster.local."}`: 1,
		`coredns_dns_requests_total{family="1",proto="udp",` + server + `,type="PTR",view="",zone="."}`:                1,
		`coredns_dns_requests_total{family="1",proto="udp",` + server + `,type="A",view="",zone="."}`:                  2,

		`coredns_dns_responses_total{plugin="kubernetes",rcode="NOERROR",` + cluster + `}`:  4,
		`coredns_dns_responses_total{plugin="kubernetes",rcode="NXDOMAIN",` + cluster + `}`: 1,
		`coredns_dns_responses_total{plugin="kubernetes",rcode="NOERROR",` + root + `}`:     1,
		`coredns_dns_responses_total{plugin="forward",rcode="NOERROR",` + root + `}`:        1,
		`coredns_dns_responses_total{plugin="forward",rcode="NXDOMAIN",` + root + `}`:       1,

		`coredns_dns_request_duration_seconds{` + cluster + `}`:                                   5,
		`coredns_dns_request_duration_seconds{` + root + `}`:                                      3,
		`coredns_dns_request_size_bytes{proto="udp",` + cluster + `}`:                             4,
		`coredns_dns_request_size_bytes{proto="tcp",` + cluster + `}`:                             1,
		`coredns_dns_response_size_bytes{proto="udp",` + root + `}`:                               3,
		`coredns_forward_requests_total{` + to + `}`:                                              2,
		`coredns_forward_responses_total{rcode="NOERROR",` + to + `}`:                             1,
		`coredns_forward_responses_total{rcode="NXDOMAIN",` + to + `}`:                            1,
		`coredns_forward_request_duration_seconds{rcode="NXDOMAIN",` + to + `}`:                   1,
		`coredns_proxy_request_duration_seconds{proxy_name="forward",rcode="NOERROR",` + to + `}`: 1,
	})
	for k := range got {
		for _, name := range []string{"web", "missing", "example", "arpa"} {
			if strings.Contains(k, name) {
				t.Errorf("series %s has a query name in a label", k)
			}
		}
		if strings.Contains(k, "coredns_dns_do_requests_total") {
			t.Errorf("DO requests counted without any DO bit: %s", k)
		}
	}

	// The DO bit of an EDNS query.
	m := new(dns.Msg).SetQuestion("web.ns1.svc.cluster.local.", dns.TypeA)
	m.SetEdns0(1232, true)
	if _, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, addr); err != nil {
		t.Fatal(err)
	}
	waitSeries(t, reg, map[string]float64{`coredns_dns_do_requests_total{` + cluster + `}`: 1})
}

// TestMetricsServerErrors: the errors the server writes itself have an
// empty plugin label: SERVFAIL when no upstream answers (and no upstream
// series, as CoreDNS records answers only), and after a panic, which is
// counted and answered.
func TestMetricsServerErrors(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	reg := prometheus.NewRegistry()
	s, _ := startServerWith(t, Config{Upstreams: []string{dead}, Registerer: reg}, namespace("default"))
	addr := s.Addrs()[0]
	server := `server="dns://` + addr + `"`
	if got := query(t, addr, "udp", "example.org.", dns.TypeA).Rcode; got != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[got])
	}

	w := &panickyWriter{discardWriter: discardWriter{
		local:  &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53},
		remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000},
	}}
	s.serve[0].ServeDNS(w, new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA))
	if w.last.Rcode != dns.RcodeServerFailure {
		t.Errorf("after a panic: rcode %s, want SERVFAIL", dns.RcodeToString[w.last.Rcode])
	}

	got := waitSeries(t, reg, map[string]float64{
		`coredns_dns_responses_total{plugin="",rcode="SERVFAIL",` + server + `,view="",zone="."}`:       1,
		`coredns_dns_responses_total{plugin="",rcode="SERVFAIL",` + server + `,view="",zone="dropped"}`: 1,
		`coredns_panics_total{}`: 1,
	})
	for k := range got {
		if strings.HasPrefix(k, "coredns_forward_") || strings.HasPrefix(k, "coredns_proxy_") {
			t.Errorf("a failed exchange recorded as an answer: %s", k)
		}
	}
}

// panickyWriter panics on its first write and keeps the message of the
// next.
type panickyWriter struct {
	discardWriter
	writes atomic.Int32
	last   dns.Msg
}

func (w *panickyWriter) Write(b []byte) (int, error) {
	if w.writes.Add(1) == 1 {
		panic("first write")
	}
	return len(b), w.last.Unpack(b)
}

// TestMetricsPerServer: each server registers its own collectors, so two
// of them (two nodes in one process) take two registries, a second one on
// the same registry is an error rather than a panic, and one that fails
// leaves its registry as it was.
func TestMetricsPerServer(t *testing.T) {
	newOn := func(reg prometheus.Registerer) error {
		s, err := New(Config{Addrs: []string{"127.0.0.1:0"}, Upstreams: []string{"127.0.0.1:1"}, Client: fake.NewClientset(), Registerer: reg})
		if err == nil {
			s.closeListeners()
		}
		return err
	}
	a, b := prometheus.NewRegistry(), prometheus.NewRegistry()
	if _, err := New(Config{Addrs: []string{"nope"}, Client: fake.NewClientset(), Registerer: a}); err == nil {
		t.Fatal("New on a bad address succeeded")
	}
	if err := newOn(a); err != nil {
		t.Fatalf("a server on the registry of one that failed: %v", err)
	}
	if err := newOn(b); err != nil {
		t.Fatalf("a second server on its own registry: %v", err)
	}
	var already prometheus.AlreadyRegisteredError
	if err := newOn(a); !errors.As(err, &already) {
		t.Errorf("a second server on the same registry: %v, want AlreadyRegisteredError", err)
	}
}
