// Package servicelb is the service controller of skiff's
// cloud-controller (--controllers name "service-lb"): for every Service
// of type LoadBalancer without a loadBalancerClass it asks the cloud
// provider (internal/cloud) for a load balancer and writes the provider's
// answer to status.loadBalancer; when the Service is deleted or stops
// wanting one, it deletes the load balancer. The finalizer
// service.kubernetes.io/load-balancer-cleanup holds a deleted Service
// until its load balancer is gone, as upstream's service controller does,
// and the controller reports the same events (EnsuringLoadBalancer,
// EnsuredLoadBalancer, DeletingLoadBalancer, DeletedLoadBalancer,
// SyncLoadBalancerFailed, UpdatedLoadBalancer, ...).
//
// Node ports for load balancers (allocateLoadBalancerNodePorts) are the
// API server's business, not this controller's.
//
// Differences from upstream: status and finalizers are written with
// Update/UpdateStatus (optimistic concurrency) rather than patches; failed
// Services are retried with the shared reconcile back-off (5 ms to 60 s,
// upstream 5 s to 300 s) and are retried at once whenever a load balancer
// is deleted, so a Service waiting for an address from a full pool gets
// the one just freed.
package servicelb

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/cloud"
	"github.com/skiff-io/skiff/internal/cloud/local"
	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

// Name is the controller's name in --controllers.
const Name = "service-lb"

// nodesKey is the one key of the node queue.
const nodesKey = "nodes"

// Options configure the controller.
type Options struct {
	// Provider is the cloud. Nil means the built-in local provider over
	// Pool.
	Provider cloud.Provider
	// Pool is the local provider's address range (default
	// local.DefaultPool, 127.0.100.0/24); ignored with a Provider.
	Pool string
	// Workers is the number of Service workers (default 2).
	Workers int
}

// Controller keeps load balancers in step with Services.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	balancer cloud.LoadBalancer
	services corelisters.ServiceLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	queue    *reconcile.Queue // Service keys
	nodeQ    *reconcile.Queue // nodesKey: the set of eligible nodes changed
	workers  int
	log      *slog.Logger

	mu      sync.Mutex
	waiting map[string]bool // Services whose last ensure failed

	// Owned by the node queue's single worker.
	knownHosts []string
	retryHosts map[string]bool
}

// New builds the controller and registers its Service and Node informers
// on factory. It fails if the provider offers no load balancers or the
// pool does not parse.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts ...Options) (*Controller, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	provider := o.Provider
	if provider == nil {
		p, err := local.New(o.Pool)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", Name, err)
		}
		provider = p
	}
	balancer, ok := provider.LoadBalancer()
	if !ok {
		return nil, fmt.Errorf("%s: the cloud provider does not support external load balancers", Name)
	}
	c := &Controller{
		client:     client,
		recorder:   recorder,
		balancer:   balancer,
		workers:    o.Workers,
		log:        slog.Default().With("controller", Name),
		waiting:    map[string]bool{},
		retryHosts: map[string]bool{},
	}
	c.queue = reconcile.New(Name, c.sync)
	c.nodeQ = reconcile.New(Name+"-nodes", c.syncNodes)

	svcInf := factory.Core().V1().Services()
	if _, err := svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.onServiceAdd,
		UpdateFunc: c.onServiceUpdate,
		DeleteFunc: c.onServiceDelete,
	}); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	nodeInf := factory.Core().V1().Nodes()
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.nodeQ.Add(nodesKey) },
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*corev1.Node)
			n, ok2 := cur.(*corev1.Node)
			if ok1 && ok2 && nodeChanged(o, n) {
				c.nodeQ.Add(nodesKey)
			}
		},
		DeleteFunc: func(any) { c.nodeQ.Add(nodesKey) },
	}); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	c.services = svcInf.Lister()
	c.nodes = nodeInf.Lister()
	c.synced = []cache.InformerSynced{svcInf.Informer().HasSynced, nodeInf.Informer().HasSynced}
	return c, nil
}

func (c *Controller) onServiceAdd(obj any) {
	// needsCleanup covers work left over from before a restart.
	if svc, ok := obj.(*corev1.Service); ok && (wantsLoadBalancer(svc) || needsCleanup(svc)) {
		c.queue.Enqueue(svc)
	}
}

func (c *Controller) onServiceUpdate(old, cur any) {
	o, ok1 := old.(*corev1.Service)
	svc, ok2 := cur.(*corev1.Service)
	if !ok1 || !ok2 {
		return
	}
	update, ch := needsUpdate(o, svc)
	if ch != nil {
		c.recorder.Event(svc, corev1.EventTypeNormal, ch.reason, ch.message)
	}
	if update || needsCleanup(svc) {
		c.queue.Enqueue(svc)
	}
}

// onServiceDelete queues a Service that went away without our finalizer
// (removed by hand, or never added), so that its address is released.
func (c *Controller) onServiceDelete(obj any) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		if t, isTomb := obj.(cache.DeletedFinalStateUnknown); isTomb {
			svc, ok = t.Obj.(*corev1.Service)
		}
	}
	if ok && (wantsLoadBalancer(svc) || hasFinalizer(svc)) {
		c.queue.Enqueue(obj)
	}
}

// Start waits for the caches, gives a provider that keeps its state in
// the Services (cloud.Restorer) the Services it manages, then reconciles
// until ctx ends. It returns after its workers have exited.
func (c *Controller) Start(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return fmt.Errorf("%s: caches did not sync: %w", Name, ctx.Err())
	}
	if err := c.restore(ctx); err != nil {
		return err
	}
	hosts, err := c.eligibleNodes()
	if err != nil {
		return fmt.Errorf("%s: listing nodes: %w", Name, err)
	}
	c.knownHosts = nodeNames(hosts)

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs <- c.queue.Run(ctx, c.workers, c.synced...) }()
	go func() { defer wg.Done(); errs <- c.nodeQ.Run(ctx, 1, c.synced...) }()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

// restore hands the provider, if it is a cloud.Restorer, every Service
// whose load balancer this controller manages or must still delete.
func (c *Controller) restore(ctx context.Context) error {
	r, ok := c.balancer.(cloud.Restorer)
	if !ok {
		return nil
	}
	all, err := c.services.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("%s: listing services: %w", Name, err)
	}
	var ours []*corev1.Service
	for _, svc := range all {
		if wantsLoadBalancer(svc) || hasFinalizer(svc) {
			ours = append(ours, svc)
		}
	}
	if err := r.Restore(ctx, ours); err != nil {
		return fmt.Errorf("%s: restoring load balancers: %w", Name, err)
	}
	return nil
}
