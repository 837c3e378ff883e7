// Package proxy is skiff's service proxy: it watches Services and
// EndpointSlices and programs one nftables table (family ip, default name
// "skiff") so that traffic to ClusterIPs, NodePorts on the node's addresses,
// external IPs and LoadBalancer ingress IPs reaches the Services' endpoints.
// It plays the part of kube-proxy in nftables mode, and keeps that mode's
// rule layout and semantics for IPv4:
//
//   - nat chains on prerouting and output (priority dstnat) jump to
//     "services", which dispatches on "daddr . l4proto . dport" through the
//     verdict map @service-ips (ClusterIP, external and LoadBalancer IPs) and,
//     for addresses in @nodeport-ips, "l4proto . dport" through
//     @service-nodeports;
//   - each service port has a "cluster/..." chain (and a "local/..." chain for
//     Local traffic policies) that picks an endpoint with
//     "numgen random mod N vmap", an "external/..." chain for NodePort,
//     external and LoadBalancer traffic, and one "endpoint/..." chain per
//     endpoint that DNATs (and masquerades hairpin traffic);
//   - traffic is marked for masquerading when it reaches a ClusterIP from
//     outside the cluster CIDR, arrives on an external address of a
//     Cluster-policy service, comes from the node itself, or hairpins; the
//     postrouting chain masquerades marked packets;
//   - services without usable endpoints are rejected (Local policies without
//     local endpoints drop) from filter chains on input, forward and output
//     through @no-endpoint-services and @no-endpoint-nodeports;
//   - sessionAffinity ClientIP keeps a timed set of client addresses per
//     endpoint.
//
// The rules are pure functions of a Service and its slices (rules.go); a
// sync diffs them against what it applied last and sends the kernel one nft
// transaction holding only the chains, sets and map elements that changed
// (plan.go). Chains that went away are flushed at once and deleted a sync
// later, as upstream does for kernels that release chain references late.
// proxier.go wires the informers and the sync loop; metrics.go exports
// kube-proxy's metrics under its names when Config.Registerer is set.
//
// Differences from upstream kube-proxy: IPv4 only; NodePorts also answer on
// 127.0.0.1 (as in kube-proxy's iptables mode, with route_localnet); no
// loadBalancerSourceRanges firewall, no topology-aware routing, no
// healthCheckNodePort server, no conntrack cleanup of stale UDP flows, no
// reject/drop of unknown ClusterIP ports; Services labelled
// skiff.io/node-local=true are left alone (the node-local DNS answers on
// their ClusterIP itself).
package proxy
