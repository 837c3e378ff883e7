// Package dns is skiff's cluster DNS: an authoritative server for the
// cluster domain (cluster.local) built from Services, EndpointSlices and
// Namespaces read through client-go informers, and a forwarder for every
// other name.
//
// It answers the names of the Kubernetes DNS specification as CoreDNS's
// kubernetes plugin does ("pods insecure", no wildcards):
//
//	svc.ns.svc.<domain>            A/AAAA: the ClusterIPs; headless: every ready endpoint
//	host.svc.ns.svc.<domain>       A/AAAA: the endpoint whose hostname (or dashed IP) is host
//	_port._proto.svc.ns.svc.<domain> SRV for a named port (headless: one per endpoint)
//	ext.ns.svc.<domain>            CNAME for an ExternalName service, chased for other types
//	a-b-c-d.ns.pod.<domain>        A a.b.c.d, without looking the pod up
//	<reverse of a ClusterIP or endpoint IP> PTR
//
// Unknown names in the domain get NXDOMAIN, existing names asked for
// another type get NODATA, both with the zone's SOA in the authority
// section. Everything else goes to the upstream resolvers.
//
// skiff runs the server inside every node agent, not as a pod: the agent
// puts the kube-dns ClusterIP (the 10th address of the service CIDR, see
// ServiceIP) on a dummy interface (EnsureLocalAddress) and the server
// listens there, the way upstream's NodeLocal DNSCache listens on the
// kube-dns address. Pods reach it through their gateway, the host.
//
// With Config.Registerer set it exports CoreDNS's metrics under CoreDNS's
// names (metrics.go), as if the answers came from its kubernetes and
// forward plugins.
package dns
