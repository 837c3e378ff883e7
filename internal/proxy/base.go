package proxy

import (
	"sigs.k8s.io/knftables"
)

// baseChain is a chain attached to a netfilter hook.
type baseChain struct {
	name     string
	typ      knftables.BaseChainType
	hook     knftables.BaseChainHook
	priority knftables.BaseChainPriority
}

// baseChains are upstream's: filters see the pre-DNAT destination (they run
// before dstnat); DNAT happens on prerouting (traffic from pods and other
// hosts) and output (the node's own traffic); masquerading on postrouting.
var baseChains = []baseChain{
	{"filter-input", knftables.FilterType, knftables.InputHook, knftables.DNATPriority + "-10"},
	{"filter-forward", knftables.FilterType, knftables.ForwardHook, knftables.DNATPriority + "-10"},
	{"filter-output", knftables.FilterType, knftables.OutputHook, knftables.DNATPriority + "-10"},
	{"nat-prerouting", knftables.NATType, knftables.PreroutingHook, knftables.DNATPriority},
	{"nat-output", knftables.NATType, knftables.OutputHook, knftables.DNATPriority},
	{"nat-postrouting", knftables.NATType, knftables.PostroutingHook, knftables.SNATPriority},
}

// baseJumps connect the base chains to the fixed regular chains. Reject is
// only allowed on input, forward and output (before kernel 5.9), so the
// no-endpoint checks hang there; new connections only.
var baseJumps = []struct{ from, rule string }{
	{"filter-input", "ct state new jump " + nodePortEndpointsCheck},
	{"filter-input", "ct state new jump " + serviceEndpointsCheck},
	{"filter-forward", "ct state new jump " + serviceEndpointsCheck},
	{"filter-output", "ct state new jump " + serviceEndpointsCheck},
	{"nat-prerouting", "jump " + servicesChain},
	{"nat-output", "jump " + servicesChain},
	{"nat-postrouting", "jump " + masqueradingChain},
}

// writeBase adds to tx the table and everything in it that does not depend
// on Services, replacing whatever a previous run left in those objects, and
// empties the verdict maps (the caller re-adds every element). recreate
// also deletes and re-adds the base chains, so that a previous version's
// hooks or priorities cannot make the transaction fail.
func writeBase(tx *knftables.Transaction, nodeIPs []string, recreate bool) {
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("skiff service proxy")})
	if recreate {
		for _, bc := range baseChains {
			tx.Add(&knftables.Chain{Name: bc.name})
			tx.Delete(&knftables.Chain{Name: bc.name})
		}
	}
	for _, bc := range baseChains {
		c := &knftables.Chain{
			Name:     bc.name,
			Type:     knftables.PtrTo(bc.typ),
			Hook:     knftables.PtrTo(bc.hook),
			Priority: knftables.PtrTo(bc.priority),
		}
		tx.Add(c)
		tx.Flush(c)
	}
	for _, name := range []string{servicesChain, markMasqChain, masqueradingChain, rejectChain, serviceEndpointsCheck, nodePortEndpointsCheck} {
		tx.Add(&knftables.Chain{Name: name})
		tx.Flush(&knftables.Chain{Name: name})
	}

	verdictMaps := []struct{ name, typ, comment string }{
		{serviceIPsMap, "ipv4_addr . inet_proto . inet_service : verdict", "ClusterIP, external and LoadBalancer IP traffic"},
		{serviceNodePortsMap, "inet_proto . inet_service : verdict", "NodePort traffic"},
		{noEndpointServicesMap, "ipv4_addr . inet_proto . inet_service : verdict", "reject or drop: services without endpoints"},
		{noEndpointNodePortsMap, "inet_proto . inet_service : verdict", "reject or drop: NodePorts without endpoints"},
	}
	for _, m := range verdictMaps {
		tx.Add(&knftables.Map{Name: m.name, Type: m.typ, Comment: knftables.PtrTo(m.comment)})
		tx.Flush(&knftables.Map{Name: m.name})
	}

	for _, j := range baseJumps {
		tx.Add(&knftables.Rule{Chain: j.from, Rule: j.rule})
	}

	tx.Add(&knftables.Rule{Chain: markMasqChain, Rule: "meta mark set meta mark | " + masqueradeMark})
	tx.Add(&knftables.Rule{Chain: masqueradingChain, Rule: "meta mark & " + masqueradeMark + " == 0 return"})
	tx.Add(&knftables.Rule{Chain: masqueradingChain, Rule: "meta mark set meta mark ^ " + masqueradeMark})
	tx.Add(&knftables.Rule{Chain: masqueradingChain, Rule: "masquerade fully-random"})
	tx.Add(&knftables.Rule{Chain: rejectChain, Rule: "reject"})

	tx.Add(&knftables.Rule{Chain: servicesChain, Rule: "ip daddr . meta l4proto . th dport vmap @" + serviceIPsMap})
	tx.Add(&knftables.Rule{Chain: serviceEndpointsCheck, Rule: "ip daddr . meta l4proto . th dport vmap @" + noEndpointServicesMap})

	// NodePorts answer on the configured node addresses, or on every local
	// address when none is configured. Unlike upstream's nftables mode this
	// includes 127.0.0.1 (as its iptables mode does): route_localnet lets
	// the DNATed packet leave loopback and the external chain masquerades it.
	tx.Add(&knftables.Set{Name: nodePortIPsSet, Type: "ipv4_addr", Comment: knftables.PtrTo("addresses NodePorts answer on")})
	tx.Flush(&knftables.Set{Name: nodePortIPsSet})
	match := "ip daddr @" + nodePortIPsSet
	if len(nodeIPs) == 0 {
		match = "fib daddr type local"
	}
	for _, ip := range nodeIPs {
		tx.Add(&knftables.Element{Set: nodePortIPsSet, Key: []string{ip}})
	}
	tx.Add(&knftables.Rule{Chain: servicesChain, Rule: match + " meta l4proto . th dport vmap @" + serviceNodePortsMap})
	tx.Add(&knftables.Rule{Chain: nodePortEndpointsCheck, Rule: match + " meta l4proto . th dport vmap @" + noEndpointNodePortsMap})
}
