package dns

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// reverseAddr is the address a PTR name in in-addr.arpa or ip6.arpa
// stands for; false for any other name, or a partial one.
func reverseAddr(name string) (netip.Addr, bool) {
	name = dns.CanonicalName(name)
	switch {
	case strings.HasSuffix(name, ".in-addr.arpa."):
		labels := strings.Split(strings.TrimSuffix(name, ".in-addr.arpa."), ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			n, err := strconv.ParseUint(l, 10, 8)
			if err != nil || (len(l) > 1 && l[0] == '0') {
				return netip.Addr{}, false
			}
			b[3-i] = byte(n)
		}
		return netip.AddrFrom4(b), true
	case strings.HasSuffix(name, ".ip6.arpa."):
		labels := strings.Split(strings.TrimSuffix(name, ".ip6.arpa."), ".")
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, l := range labels {
			n, err := strconv.ParseUint(l, 16, 8)
			if err != nil || len(l) != 1 {
				return netip.Addr{}, false
			}
			nib := 31 - i // labels run from the last nibble to the first
			if nib%2 == 0 {
				b[nib/2] |= byte(n) << 4
			} else {
				b[nib/2] |= byte(n)
			}
		}
		return netip.AddrFrom16(b).Unmap(), true
	}
	return netip.Addr{}, false
}

// ptr answers a PTR question for a service's ClusterIP or an endpoint's
// address; false when the address is not the cluster's (the question is
// then forwarded, as CoreDNS's default "fallthrough in-addr.arpa
// ip6.arpa" does).
func (s *Server) ptr(q dns.Question) ([]dns.RR, bool) {
	ip, ok := reverseAddr(q.Name)
	if !ok {
		return nil, false
	}
	var names []string
	for _, svc := range s.idx.servicesByIP(ip) {
		if !isHeadless(svc) {
			names = append(names, svc.Name+"."+svc.Namespace+".svc."+s.zone)
		}
	}
	for _, es := range s.idx.slicesByAddress(ip) {
		svcName := es.Labels[discoveryv1.LabelServiceName]
		if svcName == "" {
			continue
		}
		for _, ep := range es.Endpoints {
			for _, a := range ep.Addresses {
				if ea, err := netip.ParseAddr(a); err != nil || ea != ip {
					continue
				}
				label := dashed(ip.String())
				if ep.Hostname != nil && *ep.Hostname != "" {
					label = lower(*ep.Hostname)
				}
				names = append(names, label+"."+svcName+"."+es.Namespace+".svc."+s.zone)
			}
		}
	}
	var out []dns.RR
	seen := map[string]bool{}
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, &dns.PTR{Hdr: s.hdr(q.Name, dns.TypePTR), Ptr: n})
		}
	}
	return out, len(out) > 0
}
