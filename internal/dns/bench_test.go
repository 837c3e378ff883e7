package dns

import (
	"net"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// discardWriter is a dns.ResponseWriter for a UDP client that packs what
// is written and drops it, so that a benchmark measures the handler alone.
type discardWriter struct {
	local, remote net.Addr
}

func (w discardWriter) LocalAddr() net.Addr  { return w.local }
func (w discardWriter) RemoteAddr() net.Addr { return w.remote }
func (discardWriter) WriteMsg(m *dns.Msg) error {
	_, err := m.Pack() // as the server's writer does before it sends
	return err
}
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) Close() error                { return nil }
func (discardWriter) TsigStatus() error           { return nil }
func (discardWriter) TsigTimersOnly(bool)         {}
func (discardWriter) Hijack()                     {}

// BenchmarkServeDNS measures one query through the handler without
// sockets on the client side, without and with metrics: a cluster name,
// an NXDOMAIN in the cluster domain, and a forwarded name (which does go
// to the fake upstream over loopback UDP).
func BenchmarkServeDNS(b *testing.B) {
	up := startUpstream(b)
	w := discardWriter{
		local:  &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53},
		remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000},
	}
	for _, withMetrics := range []bool{false, true} {
		cfg := Config{Upstreams: []string{up.addr}}
		suffix := ""
		if withMetrics {
			cfg.Registerer = prometheus.NewRegistry()
			suffix = "-metrics"
		}
		s, _ := startServerWith(b, cfg, clusterObjects()...)
		h := s.serve[0]
		for _, bc := range []struct {
			name, qname string
		}{
			{"cluster", "web.ns1.svc.cluster.local."},
			{"nxdomain", "missing.ns1.svc.cluster.local."},
			{"forwarded", "example.org."},
		} {
			b.Run(bc.name+suffix, func(b *testing.B) {
				r := new(dns.Msg).SetQuestion(bc.qname, dns.TypeA)
				b.ReportAllocs()
				for b.Loop() {
					h.ServeDNS(w, r)
				}
			})
		}
	}
}
