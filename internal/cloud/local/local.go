// Package local is skiff's built-in cloud provider, for clusters that run
// on machines skiff does not provision (a laptop, a few servers). Its load
// balancer gives each Service of type LoadBalancer one address from a
// pool (--lb-pool, default 127.0.100.0/24) and does nothing else: skiff's
// proxy on every node serves the ingress address like a cluster IP, so on
// a single machine traffic to 127.0.100.x stays on loopback. Every node's
// machine exists and none is shut down.
//
// The provider keeps the assignments in memory only; they are durable in
// the Services' status.loadBalancer.ingress, from which Restore rebuilds
// them when the controller starts (rule 2: etcd is the only store).
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-io/skiff/internal/cloud"
)

// DefaultPool is the pool `skiff server` uses without --lb-pool.
const DefaultPool = "127.0.100.0/24"

// Provider is the local cloud provider. It implements cloud.Provider,
// cloud.LoadBalancer, cloud.Restorer and cloud.Instances, and is safe for
// concurrent use.
type Provider struct {
	pool *pool
	log  *slog.Logger
}

var (
	_ cloud.Provider     = (*Provider)(nil)
	_ cloud.LoadBalancer = (*Provider)(nil)
	_ cloud.Restorer     = (*Provider)(nil)
	_ cloud.Instances    = (*Provider)(nil)
)

// New returns a provider handing out the addresses of cidr (DefaultPool
// when empty), with none assigned.
func New(cidr string) (*Provider, error) {
	if cidr == "" {
		cidr = DefaultPool
	}
	p, err := newPool(cidr)
	if err != nil {
		return nil, err
	}
	return &Provider{pool: p, log: slog.Default().With("component", "cloud-local")}, nil
}

// LoadBalancer implements cloud.Provider.
func (p *Provider) LoadBalancer() (cloud.LoadBalancer, bool) { return p, true }

// Instances implements cloud.Provider.
func (p *Provider) Instances() (cloud.Instances, bool) { return p, true }

func key(svc *corev1.Service) string { return svc.Namespace + "/" + svc.Name }

// status is the load-balancer status of an address: one ingress point
// with ipMode VIP (the proxy delivers the traffic itself, as to a cluster
// IP).
func status(a netip.Addr) *corev1.LoadBalancerStatus {
	mode := corev1.LoadBalancerIPModeVIP
	return &corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: a.String(), IPMode: &mode}}}
}

// GetLoadBalancer implements cloud.LoadBalancer: the load balancer exists
// while the Service holds an address.
func (p *Provider) GetLoadBalancer(_ context.Context, svc *corev1.Service) (*corev1.LoadBalancerStatus, bool, error) {
	a, ok := p.pool.lookup(key(svc))
	if !ok {
		return nil, false, nil
	}
	return status(a), true, nil
}

// EnsureLoadBalancer implements cloud.LoadBalancer. The address is, in
// order: spec.loadBalancerIP when set (an error if it is outside the pool
// or held by another Service: the request is never silently ignored); the
// address the Service holds; an address of its current status that is in
// the pool and free (an assignment Restore could not see); the lowest
// free address. Nodes do not matter: the proxy runs on every node.
func (p *Provider) EnsureLoadBalancer(_ context.Context, svc *corev1.Service, _ []*corev1.Node) (*corev1.LoadBalancerStatus, error) {
	owner := key(svc)
	if ip := svc.Spec.LoadBalancerIP; ip != "" {
		want, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, fmt.Errorf("spec.loadBalancerIP %q: %w", ip, err)
		}
		a, err := p.pool.allocate(owner, want)
		if err != nil {
			return nil, fmt.Errorf("requested loadBalancerIP: %w", err)
		}
		return status(a), nil
	}
	if a, ok := p.pool.lookup(owner); ok {
		return status(a), nil
	}
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(ing.IP); err == nil && p.pool.contains(a.Unmap()) {
			if got, err := p.pool.allocate(owner, a); err == nil {
				return status(got), nil
			}
		}
	}
	a, err := p.pool.allocate(owner, netip.Addr{})
	if err != nil {
		return nil, err
	}
	p.log.Info("assigned load-balancer address", "service", owner, "ip", a)
	return status(a), nil
}

// UpdateLoadBalancer implements cloud.LoadBalancer: nothing to do, the
// proxy on every node serves the address.
func (p *Provider) UpdateLoadBalancer(context.Context, *corev1.Service, []*corev1.Node) error {
	return nil
}

// EnsureLoadBalancerDeleted implements cloud.LoadBalancer: the Service's
// address goes back to the pool.
func (p *Provider) EnsureLoadBalancerDeleted(_ context.Context, svc *corev1.Service) error {
	if a, ok := p.pool.release(key(svc)); ok {
		p.log.Info("released load-balancer address", "service", key(svc), "ip", a)
	}
	return nil
}

// Restore implements cloud.Restorer: each Service keeps the first address
// of its status.loadBalancer.ingress that lies in the pool. Services are
// taken oldest first, so if two claim one address the older keeps it
// (the younger gets a new one on its next EnsureLoadBalancer).
func (p *Provider) Restore(_ context.Context, services []*corev1.Service) error {
	sorted := slices.Clone(services)
	slices.SortStableFunc(sorted, func(a, b *corev1.Service) int {
		if c := a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(key(a), key(b))
	})
	var conflicts []error
	for _, svc := range sorted {
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			a, err := netip.ParseAddr(ing.IP)
			if err != nil || !p.pool.contains(a.Unmap()) {
				continue
			}
			if !p.pool.restore(key(svc), a) {
				conflicts = append(conflicts, fmt.Errorf("service %s: %s: %w", key(svc), a, ErrAddressInUse))
			}
			break
		}
	}
	if len(conflicts) > 0 {
		// Not fatal: the younger Services get new addresses.
		p.log.Warn("load-balancer addresses claimed twice", "err", errors.Join(conflicts...))
	}
	p.log.Info("restored load-balancer addresses", "inUse", p.pool.inUse())
	return nil
}

// InstanceExists implements cloud.Instances: every node's machine exists.
func (p *Provider) InstanceExists(context.Context, *corev1.Node) (bool, error) { return true, nil }

// InstanceShutdown implements cloud.Instances: no machine is shut down.
func (p *Provider) InstanceShutdown(context.Context, *corev1.Node) (bool, error) { return false, nil }
