package dns

import (
	"net"
	"runtime/debug"
	"time"

	"github.com/miekg/dns"
)

// handler serves the queries that arrive on one listener.
type handler struct {
	s *Server
	m *listenerMetrics
}

// ServeDNS answers one query: names in the cluster domain from the
// informers, PTR names of cluster addresses likewise, the rest through the
// upstreams. A panic while answering is logged and answered SERVFAIL, as
// CoreDNS does, instead of taking the node agent down.
func (h *handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	var start time.Time
	if h.m != nil {
		start = time.Now()
	}
	defer func() {
		if v := recover(); v != nil {
			h.s.log.Error("panic answering a DNS query", "panic", v, "stack", string(debug.Stack()))
			h.m.panicked()
			m := new(dns.Msg).SetRcode(r, dns.RcodeServerFailure)
			size, _ := write(w, m)
			h.m.report(w, r, fromServer, m.Rcode, size, start)
		}
	}()
	m, from := h.s.answer(r)
	udp := true
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		udp = false
	}
	if udp {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
		m.Compress = true
	}
	size, err := write(w, m)
	if err != nil {
		h.s.log.Debug("writing a DNS answer", "client", w.RemoteAddr().String(), "err", err)
	}
	h.m.report(w, r, from, m.Rcode, size, start)
}

// write sends m and returns its size. It packs m itself, as WriteMsg
// would, to learn the size that the response size metric records.
func write(w dns.ResponseWriter, m *dns.Msg) (int, error) {
	b, err := m.Pack()
	if err != nil {
		return 0, err
	}
	_, err = w.Write(b)
	return len(b), err
}

// answer returns the message answering r and where, in CoreDNS's terms,
// the answer came from.
func (s *Server) answer(r *dns.Msg) (*dns.Msg, origin) {
	m := new(dns.Msg)
	if r.Opcode != dns.OpcodeQuery {
		return m.SetRcode(r, dns.RcodeNotImplemented), fromServer
	}
	if len(r.Question) != 1 {
		return m.SetRcode(r, dns.RcodeFormatError), fromServer
	}
	q := r.Question[0]
	if q.Qclass == dns.ClassINET || q.Qclass == dns.ClassANY {
		if dns.IsSubDomain(s.zone, dns.CanonicalName(q.Name)) {
			return s.clusterMsg(r, q)
		}
		if q.Qtype == dns.TypePTR {
			if rrs, ok := s.ptr(q); ok {
				m.SetReply(r)
				m.Authoritative, m.RecursionAvailable, m.Compress = true, true, true
				m.Answer = rrs
				return withEDNS(m, r), fromReverse
			}
		}
	}
	resp, err := s.fwd.exchange(s.baseContext(), r)
	if err != nil {
		s.log.Debug("forwarding a query", "name", q.Name, "type", dns.TypeToString[q.Qtype], "err", err)
		m.SetRcode(r, dns.RcodeServerFailure)
		m.RecursionAvailable = true
		return withEDNS(m, r), fromForwardFailed
	}
	resp.Id = r.Id
	resp.Compress = true
	return resp, fromForward
}

// clusterMsg is the message answering q, a question in the cluster domain.
func (s *Server) clusterMsg(r *dns.Msg, q dns.Question) (*dns.Msg, origin) {
	m := new(dns.Msg)
	select {
	case <-s.ready:
	default:
		// The caches are not filled yet: an NXDOMAIN now would be cached by
		// the client, SERVFAIL makes it try again.
		m.SetRcode(r, dns.RcodeServerFailure)
		m.RecursionAvailable = true
		return withEDNS(m, r), fromClusterError
	}
	rep := s.cluster(s.baseContext(), q, 0)
	m.SetRcode(r, rep.rcode)
	m.Authoritative, m.RecursionAvailable, m.Compress = true, true, true
	m.Answer, m.Extra = rep.answer, rep.extra
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{s.soa()}
	}
	return withEDNS(m, r), fromKubernetes
}

// withEDNS gives m an OPT record when the query had one (RFC 6891 6.1.1).
func withEDNS(m, r *dns.Msg) *dns.Msg {
	if opt := r.IsEdns0(); opt != nil {
		size := opt.UDPSize()
		if size < dns.MinMsgSize {
			size = dns.MinMsgSize
		}
		m.SetEdns0(size, false)
	}
	return m
}
