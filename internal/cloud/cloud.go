// Package cloud is skiff's cloud-provider interface: what the
// cloud-controller (the service-lb controller in internal/cloud/servicelb)
// asks of the infrastructure skiff runs on. It mirrors upstream's
// k8s.io/cloud-provider interfaces, cut down to what skiff uses: load
// balancers for Services of type LoadBalancer, and whether a node's
// machine still exists.
//
// The built-in provider, internal/cloud/local, hands out addresses from a
// local pool and lets skiff's proxy serve them; another provider plugs in
// by implementing Provider.
//
// Differences from upstream on purpose: there is no clusterName argument
// (one skiff cluster per controller-manager), no Zones, Routes or Clusters
// interfaces, and Instances is the node-existence half of upstream's
// InstancesV2.
package cloud

import (
	"context"

	corev1 "k8s.io/api/core/v1"
)

// Provider is a cloud: it offers the parts it supports.
type Provider interface {
	// LoadBalancer returns the provider's load balancers, and false if it
	// has none (Services of type LoadBalancer then stay pending).
	LoadBalancer() (LoadBalancer, bool)
	// Instances returns the provider's view of node machines, and false if
	// it has none.
	Instances() (Instances, bool)
}

// LoadBalancer provisions the load balancer of a Service of type
// LoadBalancer. A Service's load balancer is named by its namespace and
// name; every method must be safe to call concurrently for different
// Services, and the controller never calls two methods for the same
// Service at once. The Service passed in must not be modified.
type LoadBalancer interface {
	// GetLoadBalancer returns the status of service's load balancer and
	// whether it exists. A missing load balancer is not an error.
	GetLoadBalancer(ctx context.Context, service *corev1.Service) (status *corev1.LoadBalancerStatus, exists bool, err error)
	// EnsureLoadBalancer creates service's load balancer, or brings an
	// existing one up to date with service and nodes, and returns its
	// status (never nil on success). It is idempotent.
	EnsureLoadBalancer(ctx context.Context, service *corev1.Service, nodes []*corev1.Node) (*corev1.LoadBalancerStatus, error)
	// UpdateLoadBalancer points service's existing load balancer at nodes
	// (the controller calls it when the set of eligible nodes changes).
	UpdateLoadBalancer(ctx context.Context, service *corev1.Service, nodes []*corev1.Node) error
	// EnsureLoadBalancerDeleted deletes service's load balancer and frees
	// what it held. Deleting a load balancer that does not exist succeeds.
	EnsureLoadBalancerDeleted(ctx context.Context, service *corev1.Service) error
}

// Restorer is implemented by a LoadBalancer that keeps no state of its
// own and rebuilds it from the Services (the local provider: its address
// assignments live in status.loadBalancer.ingress). The controller calls
// Restore once, after its caches have synced and before any
// EnsureLoadBalancer, with every Service whose load balancer it manages.
type Restorer interface {
	Restore(ctx context.Context, services []*corev1.Service) error
}

// Instances answers questions about the machines behind nodes.
type Instances interface {
	// InstanceExists reports whether node's machine still exists; a node
	// whose machine is gone may be deleted.
	InstanceExists(ctx context.Context, node *corev1.Node) (bool, error)
	// InstanceShutdown reports whether node's machine is shut down.
	InstanceShutdown(ctx context.Context, node *corev1.Node) (bool, error)
}
