package proxy

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// LabelNodeLocal marks a Service the proxy leaves alone: something on every
// node answers on its ClusterIP itself (the node-local DNS).
const LabelNodeLocal = "skiff.io/node-local"

// labelServiceProxyName is upstream's opt-out: a Service carrying it is
// handled by another proxy.
const labelServiceProxyName = "service.kubernetes.io/service-proxy-name"

// defaultAffinityTimeout is upstream's default sessionAffinityConfig
// clientIP.timeoutSeconds (3 hours).
const defaultAffinityTimeout = 10800

// servicePort is one port of a Service as the proxy sees it: where traffic
// arrives and which endpoints may take it.
type servicePort struct {
	Namespace, Name string
	Protocol        string // "tcp", "udp" or "sctp"
	ClusterIP       string
	Port            int32
	NodePort        int32    // 0: none
	ExternalIPs     []string // spec.externalIPs and LoadBalancer ingress IPs (VIP mode)

	// InternalLocal is internalTrafficPolicy Local; ExternalLocal is
	// externalTrafficPolicy Local on an externally reachable service.
	InternalLocal, ExternalLocal bool
	// AffinitySeconds > 0 is sessionAffinity ClientIP with that timeout.
	AffinitySeconds int32

	Endpoints []endpoint // sorted by address, deduplicated
}

// endpoint is one address:port serving a service port.
type endpoint struct {
	IP   string
	Port int32
	// Ready, Serving and Terminating are the slice conditions with upstream's
	// defaults (unset ready means ready; unset serving means ready).
	Ready, Serving, Terminating bool
	Local                       bool // on this node
}

// id names the service port inside chain names: namespace/name/proto/port.
// Namespaces, names and protocols use [a-z0-9-], so "/" separates them
// unambiguously and the result is a valid nft identifier after a prefix.
func (sp *servicePort) id() string {
	return sp.Namespace + "/" + sp.Name + "/" + sp.Protocol + "/" + strconv.Itoa(int(sp.Port))
}

func (ep endpoint) String() string { return ep.IP + ":" + strconv.Itoa(int(ep.Port)) }

// externallyAccessible reports whether traffic reaches the port other than on
// its ClusterIP.
func (sp *servicePort) externallyAccessible() bool {
	return sp.NodePort != 0 || len(sp.ExternalIPs) > 0
}

// skipService reports whether the proxy programs nothing for svc: headless
// and ExternalName Services, those another proxy owns, and node-local ones.
func skipService(svc *corev1.Service) bool {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return true
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return true
	}
	if _, ok := svc.Labels[labelServiceProxyName]; ok {
		return true
	}
	return svc.Labels[LabelNodeLocal] == "true"
}

// servicePorts returns svc's ports with their endpoints taken from slices
// (the Service's EndpointSlices; other address types than IPv4 are ignored).
// nodeName decides which endpoints are local. It returns nil for a Service
// the proxy skips or one without an IPv4 ClusterIP.
func servicePorts(svc *corev1.Service, epSlices []*discoveryv1.EndpointSlice, nodeName string) []*servicePort {
	if skipService(svc) {
		return nil
	}
	clusterIP := firstIPv4(append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...))
	if clusterIP == "" {
		return nil
	}
	var external []string
	for _, ip := range svc.Spec.ExternalIPs {
		if isIPv4(ip) {
			external = append(external, ip)
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			// Proxy mode means the load balancer delivers to the node with
			// the node as destination: nothing to capture (upstream too).
			if ing.IPMode != nil && *ing.IPMode == corev1.LoadBalancerIPModeProxy {
				continue
			}
			if isIPv4(ing.IP) {
				external = append(external, ing.IP)
			}
		}
	}
	slices.Sort(external)
	external = slices.Compact(external)

	externallyReachable := svc.Spec.Type == corev1.ServiceTypeNodePort ||
		svc.Spec.Type == corev1.ServiceTypeLoadBalancer || len(external) > 0
	externalLocal := externallyReachable && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	internalLocal := svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal

	var affinity int32
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		affinity = defaultAffinityTimeout
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil && *c.ClientIP.TimeoutSeconds > 0 {
			affinity = *c.ClientIP.TimeoutSeconds
		}
	}

	var out []*servicePort
	for _, p := range svc.Spec.Ports {
		proto := strings.ToLower(string(p.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		sp := &servicePort{
			Namespace:       svc.Namespace,
			Name:            svc.Name,
			Protocol:        proto,
			ClusterIP:       clusterIP,
			Port:            p.Port,
			ExternalIPs:     external,
			InternalLocal:   internalLocal,
			ExternalLocal:   externalLocal,
			AffinitySeconds: affinity,
		}
		if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
			sp.NodePort = p.NodePort
		}
		sp.Endpoints = endpointsFor(p, epSlices, nodeName)
		out = append(out, sp)
	}
	return out
}

// endpointsFor collects the endpoints of service port p from slices: the
// slice port with the same name and protocol gives the port, an endpoint's
// first address the IP. Duplicates (an address in two slices) keep the first.
func endpointsFor(p corev1.ServicePort, epSlices []*discoveryv1.EndpointSlice, nodeName string) []endpoint {
	var eps []endpoint
	seen := map[string]bool{}
	for _, s := range epSlices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		port := int32(0)
		for _, sp := range s.Ports {
			name := ""
			if sp.Name != nil {
				name = *sp.Name
			}
			proto := corev1.ProtocolTCP
			if sp.Protocol != nil {
				proto = *sp.Protocol
			}
			pproto := p.Protocol
			if pproto == "" {
				pproto = corev1.ProtocolTCP
			}
			if name == p.Name && proto == pproto && sp.Port != nil {
				port = *sp.Port
				break
			}
		}
		if port == 0 {
			continue
		}
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 || !isIPv4(e.Addresses[0]) {
				continue
			}
			ep := endpoint{IP: e.Addresses[0], Port: port}
			key := ep.String()
			if seen[key] {
				continue
			}
			seen[key] = true
			ep.Ready = e.Conditions.Ready == nil || *e.Conditions.Ready
			ep.Serving = ep.Ready
			if e.Conditions.Serving != nil {
				ep.Serving = *e.Conditions.Serving
			}
			ep.Terminating = e.Conditions.Terminating != nil && *e.Conditions.Terminating
			ep.Local = e.NodeName != nil && *e.NodeName == nodeName && nodeName != ""
			eps = append(eps, ep)
		}
	}
	slices.SortFunc(eps, func(a, b endpoint) int {
		if c := netip.MustParseAddr(a.IP).Compare(netip.MustParseAddr(b.IP)); c != 0 {
			return c
		}
		return int(a.Port - b.Port)
	})
	return eps
}

// categorize picks the endpoints for Cluster and Local traffic policy, as
// upstream does: Cluster takes the ready endpoints, or if there are none the
// serving terminating ones; Local takes the local ready endpoints, or if
// there are none the local serving terminating ones. hasAny reports whether
// any usable endpoint exists anywhere (Local policies without a local one
// then drop instead of reject).
func categorize(sp *servicePort) (cluster, local []endpoint, hasAny bool) {
	usesCluster := !sp.InternalLocal || sp.externallyAccessible()
	usesLocal := sp.InternalLocal || sp.ExternalLocal
	if usesCluster {
		cluster = filter(sp.Endpoints, func(ep endpoint) bool { return ep.Ready })
		if len(cluster) == 0 {
			cluster = filter(sp.Endpoints, func(ep endpoint) bool { return ep.Serving && ep.Terminating })
		}
		hasAny = len(cluster) > 0
	}
	if !usesLocal {
		return cluster, nil, hasAny
	}
	local = filter(sp.Endpoints, func(ep endpoint) bool { return ep.Local && ep.Ready })
	if len(local) == 0 {
		local = filter(sp.Endpoints, func(ep endpoint) bool { return ep.Local && ep.Serving && ep.Terminating })
	}
	if !hasAny {
		hasAny = len(filter(sp.Endpoints, func(ep endpoint) bool { return ep.Ready || (ep.Serving && ep.Terminating) })) > 0
	}
	return cluster, local, hasAny
}

func filter(eps []endpoint, keep func(endpoint) bool) []endpoint {
	var out []endpoint
	for _, ep := range eps {
		if keep(ep) {
			out = append(out, ep)
		}
	}
	return out
}

func isIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

func firstIPv4(ips []string) string {
	for _, ip := range ips {
		if isIPv4(ip) {
			return ip
		}
	}
	return ""
}
