package dns

import (
	"net"

	"github.com/miekg/dns"
)

// ServeDNS answers one query: names in the cluster domain from the
// informers, PTR names of cluster addresses likewise, the rest through the
// upstreams.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := s.answer(r)
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
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("writing a DNS answer", "client", w.RemoteAddr().String(), "err", err)
	}
}

func (s *Server) answer(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	if r.Opcode != dns.OpcodeQuery {
		return m.SetRcode(r, dns.RcodeNotImplemented)
	}
	if len(r.Question) != 1 {
		return m.SetRcode(r, dns.RcodeFormatError)
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
				return withEDNS(m, r)
			}
		}
	}
	resp, err := s.fwd.exchange(s.baseContext(), r)
	if err != nil {
		s.log.Debug("forwarding a query", "name", q.Name, "type", dns.TypeToString[q.Qtype], "err", err)
		m.SetRcode(r, dns.RcodeServerFailure)
		m.RecursionAvailable = true
		return withEDNS(m, r)
	}
	resp.Id = r.Id
	resp.Compress = true
	return resp
}

// clusterMsg is the message answering q, a question in the cluster domain.
func (s *Server) clusterMsg(r *dns.Msg, q dns.Question) *dns.Msg {
	m := new(dns.Msg)
	select {
	case <-s.ready:
	default:
		// The caches are not filled yet: an NXDOMAIN now would be cached by
		// the client, SERVFAIL makes it try again.
		m.SetRcode(r, dns.RcodeServerFailure)
		m.RecursionAvailable = true
		return withEDNS(m, r)
	}
	rep := s.cluster(s.baseContext(), q, 0)
	m.SetRcode(r, rep.rcode)
	m.Authoritative, m.RecursionAvailable, m.Compress = true, true, true
	m.Answer, m.Extra = rep.answer, rep.extra
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{s.soa()}
	}
	return withEDNS(m, r)
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
