// Package networking holds the registry of the networking.k8s.io API group:
// ingresses and ingress classes, service CIDRs and IP addresses, with
// upstream's defaulting, validation and `kubectl get` columns.
//
// skiff serves these objects; it does not act on all of them. No ingress
// controller is built in: an Ingress routes traffic once one is installed
// (ingress-nginx, Traefik, ...), as on a bare upstream cluster. The server
// creates the default ServiceCIDR "kubernetes" from --service-cidr, but
// ClusterIPs are allocated from that flag alone: further ServiceCIDR
// objects do not extend the range, and allocated ClusterIPs are not
// mirrored as IPAddress objects (docs/compatibility.md). NetworkPolicy is
// not served: nothing would enforce it.
package networking

import (
	"github.com/skiff-io/skiff/internal/registry"
)

// Resources returns the descriptors of networking.k8s.io/v1.
func Resources() []*registry.Resource {
	return []*registry.Resource{ingresses(), ingressClasses(), serviceCIDRs(), ipAddresses()}
}
