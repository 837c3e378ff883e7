package dns

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
)

// reply is the answer to one question in the cluster domain. No answer
// with RcodeSuccess is NODATA.
type reply struct {
	rcode  int
	answer []dns.RR
	extra  []dns.RR
}

var (
	nxdomain = reply{rcode: dns.RcodeNameError}
	nodata   = reply{rcode: dns.RcodeSuccess}
)

// maxCNAMEChain bounds how many ExternalName services in the cluster
// domain are followed for one question (CoreDNS stops at 8 too).
const maxCNAMEChain = 8

// schemaVersion is the answer to TXT dns-version.<domain>: the version of
// the Kubernetes DNS specification implemented.
const schemaVersion = "1.1.0"

func lower(s string) string { return strings.ToLower(s) }

// cluster answers q, a question for a name in the cluster domain. depth
// counts the in-domain CNAMEs followed so far.
func (s *Server) cluster(ctx context.Context, q dns.Question, depth int) reply {
	name := dns.CanonicalName(q.Name)
	base := strings.TrimSuffix(strings.TrimSuffix(name, s.zone), ".")
	labels := dns.SplitDomainName(base)
	if len(labels) == 0 {
		return s.apex(q)
	}
	last := len(labels) - 1
	switch labels[last] {
	case "svc":
		return s.services(ctx, q, labels[:last], depth)
	case "pod":
		return s.pods(q, labels[:last])
	case "dns":
		switch {
		case last == 0:
			return nodata
		case last == 1 && labels[0] == "ns":
			return s.addresses(q, "ns.dns."+s.zone, s.dnsIPs())
		}
	case "dns-version":
		if last == 0 {
			if q.Qtype != dns.TypeTXT {
				return nodata
			}
			return reply{answer: []dns.RR{&dns.TXT{Hdr: s.hdr(q.Name, dns.TypeTXT), Txt: []string{schemaVersion}}}}
		}
	}
	return nxdomain
}

func (s *Server) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: s.cfg.TTL}
}

// soa is the cluster zone's SOA, as CoreDNS writes it.
func (s *Server) soa() dns.RR {
	return &dns.SOA{
		Hdr:     s.hdr(s.zone, dns.TypeSOA),
		Ns:      "ns.dns." + s.zone,
		Mbox:    "hostmaster." + s.zone,
		Serial:  s.idx.modified.Load(),
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  s.cfg.TTL,
	}
}

func (s *Server) apex(q dns.Question) reply {
	switch q.Qtype {
	case dns.TypeSOA:
		return reply{answer: []dns.RR{s.soa()}}
	case dns.TypeNS:
		ns := "ns.dns." + s.zone
		r := reply{answer: []dns.RR{&dns.NS{Hdr: s.hdr(q.Name, dns.TypeNS), Ns: ns}}}
		r.extra = s.addresses(dns.Question{Name: ns, Qtype: dns.TypeA}, ns, s.dnsIPs()).answer
		r.extra = append(r.extra, s.addresses(dns.Question{Name: ns, Qtype: dns.TypeAAAA}, ns, s.dnsIPs()).answer...)
		return r
	}
	return nodata
}

// dnsIPs are the cluster DNS's own addresses: the kube-dns Service's
// ClusterIPs, or the addresses served when that Service does not exist.
func (s *Server) dnsIPs() []netip.Addr {
	if svc := s.idx.service("kube-system", "kube-dns"); svc != nil {
		if ips := clusterIPs(svc); len(ips) > 0 && !isHeadless(svc) {
			return ips
		}
	}
	var out []netip.Addr
	for _, a := range s.Addrs() {
		if ap, err := netip.ParseAddrPort(a); err == nil && !ap.Addr().IsUnspecified() {
			out = append(out, ap.Addr().Unmap())
		}
	}
	return out
}

// addresses answers an A or AAAA question for name with those of ips that
// fit it; other types get NODATA.
func (s *Server) addresses(q dns.Question, name string, ips []netip.Addr) reply {
	var r reply
	for _, ip := range ips {
		if rr := s.addressRR(q.Qtype, name, ip); rr != nil {
			r.answer = append(r.answer, rr)
		}
	}
	return r
}

// addressRR is the A or AAAA record of ip if qtype asks for its family.
func (s *Server) addressRR(qtype uint16, name string, ip netip.Addr) dns.RR {
	switch {
	case qtype == dns.TypeA && ip.Is4():
		return &dns.A{Hdr: s.hdr(name, dns.TypeA), A: ip.AsSlice()}
	case qtype == dns.TypeAAAA && ip.Is6():
		return &dns.AAAA{Hdr: s.hdr(name, dns.TypeAAAA), AAAA: ip.AsSlice()}
	}
	return nil
}

// pods answers <a-b-c-d>.<ns>.pod.<domain> from the name alone, as
// CoreDNS's "pods insecure" mode: the namespace must exist, the pod is not
// looked up.
func (s *Server) pods(q dns.Question, labels []string) reply {
	n := len(labels)
	if n == 0 {
		return nodata
	}
	if !s.idx.namespaceExists(labels[n-1]) {
		return nxdomain
	}
	switch n {
	case 1:
		return nodata
	case 2:
	default:
		return nxdomain
	}
	var text string
	if pod := labels[0]; strings.Count(pod, "-") == 3 && !strings.Contains(pod, "--") {
		text = strings.ReplaceAll(pod, "-", ".")
	} else {
		text = strings.ReplaceAll(pod, "-", ":")
	}
	ip, err := netip.ParseAddr(text)
	if err != nil || ip.Zone() != "" {
		return nxdomain
	}
	return s.addresses(q, q.Name, []netip.Addr{ip.Unmap()})
}

// target is one record a service name stands for: an address, and the
// port for SRV (-1: none).
type target struct {
	name string // the owner name of the address: the service's, or the endpoint's
	ip   netip.Addr
	port int32
}

// services answers the names under svc.<domain>; labels are the ones
// left of "svc".
func (s *Server) services(ctx context.Context, q dns.Question, labels []string, depth int) reply {
	n := len(labels)
	if n == 0 {
		return nodata
	}
	ns := labels[n-1]
	if !s.idx.namespaceExists(ns) {
		return nxdomain
	}
	if n == 1 {
		return nodata
	}
	svc := s.idx.service(ns, labels[n-2])
	if svc == nil {
		return nxdomain
	}
	var endpointLabel, portName, proto string
	switch rest := labels[:n-2]; len(rest) {
	case 0:
	case 1:
		endpointLabel = rest[0]
	case 2:
		portName, proto = strings.TrimPrefix(rest[0], "_"), strings.TrimPrefix(rest[1], "_")
	default:
		return nxdomain
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		if n > 2 {
			return nxdomain // an ExternalName service has neither endpoints nor SRV records
		}
		return s.externalName(ctx, q, svc, depth)
	}
	svcName := svc.Name + "." + svc.Namespace + ".svc." + s.zone
	targets := s.targets(svc, svcName, endpointLabel, portName, proto)
	if len(targets) == 0 {
		return nxdomain
	}
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA:
		var r reply
		seen := map[netip.Addr]bool{}
		for _, t := range targets {
			if seen[t.ip] {
				continue
			}
			seen[t.ip] = true
			if rr := s.addressRR(q.Qtype, q.Name, t.ip); rr != nil {
				r.answer = append(r.answer, rr)
			}
		}
		// Spread clients over a headless service's endpoints, as the
		// loadbalance plugin of CoreDNS's default configuration does.
		rand.Shuffle(len(r.answer), func(i, j int) { r.answer[i], r.answer[j] = r.answer[j], r.answer[i] })
		return r
	case dns.TypeSRV:
		return s.srv(q, targets)
	}
	return nodata
}

// targets lists the addresses and ports svc's name stands for, filtered by
// the endpoint label and the SRV port name and protocol when given.
func (s *Server) targets(svc *corev1.Service, svcName, endpointLabel, portName, proto string) []target {
	match := func(name, p string) bool {
		return (portName == "" || strings.EqualFold(portName, name)) && (proto == "" || strings.EqualFold(proto, p))
	}
	var out []target
	if !isHeadless(svc) && endpointLabel == "" {
		for _, p := range svc.Spec.Ports {
			if p.Protocol == "" {
				p.Protocol = corev1.ProtocolTCP
			}
			if !match(p.Name, string(p.Protocol)) {
				continue
			}
			for _, ip := range clusterIPs(svc) {
				out = append(out, target{name: svcName, ip: ip, port: p.Port})
			}
		}
		return out
	}
	for _, e := range s.idx.endpoints(svc.Namespace, svc.Name, svc.Spec.PublishNotReadyAddresses) {
		if endpointLabel != "" && e.label != endpointLabel {
			continue
		}
		name := e.label + "." + svcName
		if len(e.ports) == 0 {
			if portName == "" && proto == "" {
				out = append(out, target{name: name, ip: e.ip, port: -1})
			}
			continue
		}
		for _, p := range e.ports {
			if match(p.name, p.proto) {
				out = append(out, target{name: name, ip: e.ip, port: p.number})
			}
		}
	}
	return out
}

// srv answers SRV with one record per distinct target and port, all of
// priority 0 and equal weight, and the targets' addresses as extra
// records.
func (s *Server) srv(q dns.Question, targets []target) reply {
	type key struct {
		name string
		port int32
	}
	var uniq []target
	seen := map[key]bool{}
	for _, t := range targets {
		if t.port < 0 || seen[key{t.name, t.port}] {
			continue
		}
		seen[key{t.name, t.port}] = true
		uniq = append(uniq, t)
	}
	if len(uniq) == 0 {
		return nodata
	}
	weight := uint16(100 / len(uniq))
	if weight == 0 {
		weight = 1
	}
	var r reply
	type addrKey struct {
		name string
		ip   netip.Addr
	}
	extra := map[addrKey]bool{}
	for _, t := range uniq {
		r.answer = append(r.answer, &dns.SRV{Hdr: s.hdr(q.Name, dns.TypeSRV), Priority: 0, Weight: weight, Port: uint16(t.port), Target: t.name})
		if extra[addrKey{t.name, t.ip}] {
			continue
		}
		extra[addrKey{t.name, t.ip}] = true
		qt := dns.TypeA
		if t.ip.Is6() {
			qt = dns.TypeAAAA
		}
		r.extra = append(r.extra, s.addressRR(qt, t.name, t.ip))
	}
	return r
}

// externalName answers for an ExternalName service: the CNAME, followed
// for any other type, in the cluster domain here and through the upstreams
// outside it.
func (s *Server) externalName(ctx context.Context, q dns.Question, svc *corev1.Service, depth int) reply {
	ext := strings.TrimSuffix(svc.Spec.ExternalName, ".")
	if ip, err := netip.ParseAddr(ext); err == nil {
		// Validation forbids an address; CoreDNS answers one as A/AAAA.
		return s.addresses(q, q.Name, []netip.Addr{ip.Unmap()})
	}
	target := dns.Fqdn(lower(ext))
	if _, ok := dns.IsDomainName(target); !ok || target == dns.CanonicalName(q.Name) {
		return nxdomain
	}
	cname := &dns.CNAME{Hdr: s.hdr(q.Name, dns.TypeCNAME), Target: target}
	r := reply{answer: []dns.RR{cname}}
	if q.Qtype == dns.TypeCNAME || depth >= maxCNAMEChain {
		return r
	}
	next := dns.Question{Name: target, Qtype: q.Qtype, Qclass: dns.ClassINET}
	if dns.IsSubDomain(s.zone, target) {
		nr := s.cluster(ctx, next, depth+1)
		r.answer = append(r.answer, nr.answer...)
		r.extra = nr.extra
		r.rcode = nr.rcode
		return r
	}
	m := new(dns.Msg)
	m.SetQuestion(target, q.Qtype)
	resp, err := s.fwd.exchange(ctx, m)
	if err != nil {
		s.log.Debug("resolving an ExternalName target", "target", target, "err", err)
		return r // the CNAME alone: the client may resolve the target itself
	}
	r.answer = append(r.answer, resp.Answer...)
	r.rcode = resp.Rcode
	return r
}
