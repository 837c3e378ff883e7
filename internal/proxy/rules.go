package proxy

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Names of the table's fixed chains, sets and maps (base.go builds them).
const (
	servicesChain          = "services"
	markMasqChain          = "mark-for-masquerade"
	masqueradingChain      = "masquerading"
	rejectChain            = "reject-chain"
	serviceEndpointsCheck  = "service-endpoints-check"
	nodePortEndpointsCheck = "nodeport-endpoints-check"

	serviceIPsMap          = "service-ips"
	serviceNodePortsMap    = "service-nodeports"
	noEndpointServicesMap  = "no-endpoint-services"
	noEndpointNodePortsMap = "no-endpoint-nodeports"
	nodePortIPsSet         = "nodeport-ips"

	// masqueradeMark is the packet mark bit meaning "masquerade me"
	// (kube-proxy's default bit 14).
	masqueradeMark = "0x4000"
)

// Prefixes of the per-service chains and sets. Every such name contains a
// "/", which no fixed name does: that is how a full sync recognises them.
const (
	clusterChainPrefix  = "cluster/"
	localChainPrefix    = "local/"
	externalChainPrefix = "external/"
	endpointChainPrefix = "endpoint/"
	affinitySetPrefix   = "affinity/"
)

// ruleConfig is what the rules depend on besides Services and slices.
type ruleConfig struct {
	NodeName string
	// ClusterCIDR is the pod network; ClusterIP traffic from outside it is
	// masqueraded. Empty, or MasqueradeAll, masquerades all ClusterIP
	// traffic.
	ClusterCIDR   string
	MasqueradeAll bool
}

// elementKey names one element of one of the fixed maps; Key is the nft
// concatenation ("10.43.0.10 . tcp . 80").
type elementKey struct {
	Map, Key string
}

// serviceRules is everything one Service contributes to the table: its
// chains with their rules in order, its affinity sets with their timeout
// in seconds, and its elements of the fixed verdict maps. Two values are
// equal when they program the same thing. NoLocal counts the ports whose
// Local policies drop traffic (for metrics).
type serviceRules struct {
	Chains   map[string][]string
	Sets     map[string]int32
	Elements map[elementKey]string
	NoLocal  noLocalCounts
}

// noLocalCounts counts service ports that have usable endpoints but none
// on this node for their internal or external Local traffic policy, so
// that traffic under that policy is dropped (upstream's
// kubeproxy_sync_proxy_rules_no_local_endpoints_total).
type noLocalCounts struct {
	internal, external int
}

func (c *noLocalCounts) add(d noLocalCounts, sign int) {
	c.internal += sign * d.internal
	c.external += sign * d.external
}

func newServiceRules() *serviceRules {
	return &serviceRules{
		Chains:   map[string][]string{},
		Sets:     map[string]int32{},
		Elements: map[elementKey]string{},
	}
}

// buildService returns the rules for svc given its EndpointSlices, or nil if
// the proxy programs nothing for it. It is a pure function.
func buildService(cfg *ruleConfig, svc *corev1.Service, epSlices []*discoveryv1.EndpointSlice) *serviceRules {
	ports := servicePorts(svc, epSlices, cfg.NodeName)
	if len(ports) == 0 {
		return nil
	}
	r := newServiceRules()
	for _, sp := range ports {
		r.addPort(cfg, sp)
	}
	return r
}

// addPort writes one service port's chains, sets and map elements.
func (r *serviceRules) addPort(cfg *ruleConfig, sp *servicePort) {
	id := sp.id()
	port := strconv.Itoa(int(sp.Port))
	clusterChain := clusterChainPrefix + id
	localChain := localChainPrefix + id
	externalChain := externalChainPrefix + id
	rejectVerdict := "goto " + rejectChain

	cluster, local, hasAny := categorize(sp)

	// Internal (ClusterIP) traffic goes to the cluster chain, or the local
	// one under internalTrafficPolicy Local; external traffic always enters
	// the external chain, which applies externalTrafficPolicy.
	internalChain, hasInternal := clusterChain, hasAny
	if sp.InternalLocal {
		internalChain, hasInternal = localChain, hasAny && len(local) > 0
	}
	externalPolicyChain, hasExternal := clusterChain, hasAny
	if sp.ExternalLocal {
		externalPolicyChain, hasExternal = localChain, hasAny && len(local) > 0
	}
	// No endpoints anywhere: reject. Endpoints, but none for this policy:
	// drop (upstream's distinction).
	internalVerdict, externalVerdict := rejectVerdict, rejectVerdict
	if hasAny {
		internalVerdict, externalVerdict = "drop", "drop"
		if !hasInternal {
			r.NoLocal.internal++
		}
		if !hasExternal {
			r.NoLocal.external++
		}
	}

	key := sp.ClusterIP + " . " + sp.Protocol + " . " + port
	if hasInternal {
		r.Elements[elementKey{serviceIPsMap, key}] = "goto " + internalChain
	} else {
		r.Elements[elementKey{noEndpointServicesMap, key}] = internalVerdict
	}
	for _, ip := range sp.ExternalIPs {
		k := ip + " . " + sp.Protocol + " . " + port
		if hasAny {
			r.Elements[elementKey{serviceIPsMap, k}] = "goto " + externalChain
		}
		if !hasExternal {
			r.Elements[elementKey{noEndpointServicesMap, k}] = externalVerdict
		}
	}
	if sp.NodePort != 0 {
		k := sp.Protocol + " . " + strconv.Itoa(int(sp.NodePort))
		if hasAny {
			r.Elements[elementKey{serviceNodePortsMap, k}] = "goto " + externalChain
		}
		if !hasExternal {
			r.Elements[elementKey{noEndpointNodePortsMap, k}] = externalVerdict
		}
	}
	if !hasAny {
		return // only the reject elements: no chains
	}

	if hasInternal {
		// Masquerade ClusterIP traffic from outside the pod network (the
		// node itself, or a host routing the service range to us).
		rule := "ip daddr " + sp.ClusterIP + " " + sp.Protocol + " dport " + port
		if cfg.ClusterCIDR != "" && !cfg.MasqueradeAll {
			rule += " ip saddr != " + cfg.ClusterCIDR
		}
		r.Chains[internalChain] = append(r.Chains[internalChain], rule+" jump "+markMasqChain)
	}

	if sp.externallyAccessible() {
		var rules []string
		if !sp.ExternalLocal {
			// The endpoint may be on another node: masquerade so the reply
			// comes back through us.
			rules = append(rules, "jump "+markMasqChain)
		} else {
			// Pods and the node itself reaching an external address are
			// not subject to the Local policy (as if they had gone out to
			// the load balancer and come back); the node's traffic is
			// masqueraded because its source is the external address.
			if cfg.ClusterCIDR != "" {
				rules = append(rules, "ip saddr "+cfg.ClusterCIDR+" goto "+clusterChain)
			}
			rules = append(rules,
				"fib saddr type local jump "+markMasqChain,
				"fib saddr type local goto "+clusterChain)
		}
		if hasExternal {
			rules = append(rules, "goto "+externalPolicyChain)
		}
		r.Chains[externalChain] = rules
	}

	if len(cluster) > 0 {
		r.Chains[clusterChain] = append(r.Chains[clusterChain], balanceRules(sp, cluster)...)
	}
	if len(local) > 0 {
		r.Chains[localChain] = append(r.Chains[localChain], balanceRules(sp, local)...)
	}

	for _, eps := range [][]endpoint{cluster, local} {
		for _, ep := range eps {
			chain := endpointChain(sp, ep)
			if _, done := r.Chains[chain]; done {
				continue // local endpoints are usually cluster endpoints too
			}
			rules := []string{
				// Hairpin: an endpoint reaching itself through the service
				// must see the reply come from the service address.
				"ip saddr " + ep.IP + " jump " + markMasqChain,
			}
			if sp.AffinitySeconds > 0 {
				set := affinitySet(sp, ep)
				r.Sets[set] = sp.AffinitySeconds
				rules = append(rules, "update @"+set+" { ip saddr }")
			}
			rules = append(rules, "meta l4proto "+sp.Protocol+" dnat to "+ep.String())
			r.Chains[chain] = rules
		}
	}
}

// balanceRules picks one of eps: the endpoint a client is stuck to under
// ClientIP affinity, else one at random.
func balanceRules(sp *servicePort, eps []endpoint) []string {
	var rules []string
	if sp.AffinitySeconds > 0 {
		for _, ep := range eps {
			rules = append(rules, "ip saddr @"+affinitySet(sp, ep)+" goto "+endpointChain(sp, ep))
		}
	}
	var b strings.Builder
	b.WriteString("numgen random mod ")
	b.WriteString(strconv.Itoa(len(eps)))
	b.WriteString(" vmap {")
	for i, ep := range eps {
		if i > 0 {
			b.WriteString(" ,") // spaced: knftables' fake splits on blanks
		}
		b.WriteString(" ")
		b.WriteString(strconv.Itoa(i))
		b.WriteString(" : goto ")
		b.WriteString(endpointChain(sp, ep))
	}
	b.WriteString(" }")
	return append(rules, b.String())
}

func endpointChain(sp *servicePort, ep endpoint) string {
	return endpointChainPrefix + sp.id() + "/" + ep.IP + "/" + strconv.Itoa(int(ep.Port))
}

func affinitySet(sp *servicePort, ep endpoint) string {
	return affinitySetPrefix + sp.id() + "/" + ep.IP + "/" + strconv.Itoa(int(ep.Port))
}

// isServiceObject reports whether a chain or set name is a per-service one.
func isServiceObject(name string) bool { return strings.Contains(name, "/") }
