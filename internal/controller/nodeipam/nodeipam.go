// Package nodeipam is the node IPAM controller: it gives every Node that
// has none a pod range (spec.podCIDR and spec.podCIDRs) cut from the
// cluster CIDR, and takes the range back when the Node is deleted. The
// ranges in use are rebuilt from the Nodes themselves on start, so the
// controller keeps no state of its own across restarts (rule 2).
//
// Only one family (the cluster CIDR's) is allocated; upstream's dual-stack
// allocation of two ranges per node is not done.
package nodeipam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

const name = "nodeipam"

// Options configure the controller.
type Options struct {
	// ClusterCIDR is the range node pod ranges are cut from
	// (default 10.42.0.0/16).
	ClusterCIDR string
	// NodeMaskSize is the prefix length of each node's range (default 24).
	NodeMaskSize int
	// Workers is the number of reconcile workers (default 2).
	Workers int
}

// Controller allocates node pod CIDRs.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	nodes    corelisters.NodeLister
	synced   cache.InformerSynced
	queue    *reconcile.Queue
	set      *cidrSet
	workers  int
	log      *slog.Logger

	mu    sync.Mutex
	owned map[string]string // node name -> the range it holds in set
}

// New builds the controller and registers its Node informer on factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts Options) (*Controller, error) {
	if opts.ClusterCIDR == "" {
		opts.ClusterCIDR = "10.42.0.0/16"
	}
	if opts.NodeMaskSize == 0 {
		opts.NodeMaskSize = 24
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	set, err := newCIDRSet(opts.ClusterCIDR, opts.NodeMaskSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := &Controller{
		client:   client,
		recorder: recorder,
		set:      set,
		workers:  opts.Workers,
		owned:    map[string]string{},
		log:      slog.Default().With("controller", name),
	}
	c.queue = reconcile.New(name, c.sync)
	inf := factory.Core().V1().Nodes()
	if _, err := inf.Informer().AddEventHandler(c.queue.Handler()); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c.nodes = inf.Lister()
	c.synced = inf.Informer().HasSynced
	return c, nil
}

// Start marks the ranges of the existing Nodes as taken, then allocates
// until ctx ends. It returns after its workers have exited.
func (c *Controller) Start(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return fmt.Errorf("%s: caches did not sync: %w", name, ctx.Err())
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("%s: listing nodes: %w", name, err)
	}
	for _, n := range nodes {
		c.remember(n)
	}
	return c.queue.Run(ctx, c.workers, c.synced)
}

// remember records the range a node already has as taken.
func (c *Controller) remember(n *corev1.Node) {
	cidr := nodeCIDR(n)
	if cidr == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.owned[n.Name]; ok && old == cidr {
		return
	}
	if c.set.Occupy(cidr) {
		c.owned[n.Name] = cidr
	}
}

// forget releases the range a deleted node held.
func (c *Controller) forget(nodeName string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cidr, ok := c.owned[nodeName]; ok {
		c.set.Release(cidr)
		delete(c.owned, nodeName)
	}
}

// nodeCIDR is the range a node holds: spec.podCIDR, else the first of
// spec.podCIDRs.
func nodeCIDR(n *corev1.Node) string {
	if n.Spec.PodCIDR != "" {
		return n.Spec.PodCIDR
	}
	if len(n.Spec.PodCIDRs) > 0 {
		return n.Spec.PodCIDRs[0]
	}
	return ""
}

// sync gives the node named key a range if it has none, records the range
// it has, or releases the range of a node that is gone.
func (c *Controller) sync(ctx context.Context, key string) error {
	node, err := c.nodes.Get(key)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if nodeCIDR(node) != "" {
		c.remember(node)
		return nil
	}
	c.mu.Lock()
	cidr, held := c.owned[key] // allocated earlier but the update was lost
	c.mu.Unlock()
	if !held {
		cidr, err = c.set.Allocate()
		if errors.Is(err, ErrCIDRExhausted) {
			c.recorder.Eventf(node, corev1.EventTypeNormal, "CIDRNotAvailable", "Node %s status is now: CIDRNotAvailable", node.Name)
			return fmt.Errorf("node %s: %w", node.Name, err)
		}
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.owned[key] = cidr
		c.mu.Unlock()
	}
	next := node.DeepCopy()
	next.Spec.PodCIDR = cidr
	next.Spec.PodCIDRs = []string{cidr}
	if _, err := c.client.CoreV1().Nodes().Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			c.forget(key)
			return nil
		}
		// Keep the range reserved for this node: the retry uses it.
		return fmt.Errorf("node %s: setting podCIDR %s: %w", node.Name, cidr, err)
	}
	c.log.Info("allocated pod CIDR", "node", node.Name, "cidr", cidr)
	return nil
}
