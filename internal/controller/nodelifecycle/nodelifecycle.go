// Package nodelifecycle watches node heartbeats and acts on nodes that
// stop sending them. It joins three upstream controllers:
//
//   - node lifecycle: a node whose heartbeat (its kube-node-lease Lease, or
//     its Ready condition) is older than the grace period gets its kubelet
//     conditions set to Unknown; nodes get the unreachable / not-ready
//     taints (NoExecute and NoSchedule) and the condition NoSchedule taints
//     (TaintNodesByCondition), which go again when the node recovers; pods
//     on a node that is not Ready are marked Ready=False;
//   - taint eviction: a pod on a node with NoExecute taints it does not
//     tolerate is deleted at once, one that tolerates them for a while is
//     deleted when that time is up (from the taint's timeAdded);
//   - pod GC of orphans: a pod bound to a node that does not exist is
//     deleted with grace 0.
//
// It reads Nodes, Leases and Pods from informers; time comes from an
// injectable clock.
package nodelifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	coordlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

const name = "nodelifecycle"

// leaseNamespace holds the kubelets' heartbeat Leases.
const leaseNamespace = corev1.NamespaceNodeLease

// podsByNode is the pod informer index of spec.nodeName.
const podsByNode = "nodelifecycle.spec.nodeName"

// Options configure the controller.
type Options struct {
	// GracePeriod is how long a node's heartbeat may be silent before the
	// node is Unknown (default 40 s, upstream's node-monitor-grace-period).
	GracePeriod time.Duration
	// EvictionRate is how many nodes per second may newly get NoExecute
	// taints (and so have their pods evicted): upstream's
	// --node-eviction-rate, 0.1 there. Zero or less: unbounded. Upstream
	// keeps one bucket per zone and slows down when a zone is largely
	// unhealthy; skiff has one global bucket.
	EvictionRate float64
	// Workers is the number of workers of each queue (default 4).
	Workers int
	// Clock is the time source (default the real clock).
	Clock clock.WithTicker
}

// Controller is the node lifecycle controller.
type Controller struct {
	client    kubernetes.Interface
	recorder  record.EventRecorder
	nodes     corelisters.NodeLister
	leases    coordlisters.LeaseLister
	pods      corelisters.PodLister
	podIndex  cache.Indexer
	synced    []cache.InformerSynced
	nodeQ     *reconcile.Queue
	podQ      *reconcile.Queue
	opts      Options
	clock     clock.WithTicker
	evictions *limiter
	log       *slog.Logger

	mu sync.Mutex
	// firstSeen is when the controller first saw a NoExecute taint that
	// carries no timeAdded ("node\x00key\x00effect").
	firstSeen map[string]time.Time
	// evicted holds the pods this controller has already evicted, so that
	// a reconcile on a cache that has not yet seen the deletion neither
	// deletes nor reports them twice. An entry goes with the pod.
	evicted map[types.UID]struct{}
}

// New builds the controller and registers its Node, Lease and Pod
// informers on factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts Options) (*Controller, error) {
	if opts.GracePeriod <= 0 {
		opts.GracePeriod = 40 * time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	c := &Controller{
		client:    client,
		recorder:  recorder,
		opts:      opts,
		clock:     opts.Clock,
		evictions: newLimiter(opts.EvictionRate, opts.Clock),
		firstSeen: map[string]time.Time{},
		evicted:   map[types.UID]struct{}{},
		log:       slog.Default().With("controller", name),
	}
	c.nodeQ = reconcile.New(name+"-nodes", c.syncNode)
	c.podQ = reconcile.New(name+"-pods", c.syncPod)

	nodes := factory.Core().V1().Nodes()
	leases := factory.Coordination().V1().Leases()
	pods := factory.Core().V1().Pods()
	if err := pods.Informer().AddIndexers(cache.Indexers{podsByNode: indexByNode}); err != nil {
		return nil, fmt.Errorf("%s: pod index: %w", name, err)
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{nodes.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.nodeQ.Enqueue,
			UpdateFunc: c.nodeUpdated,
			DeleteFunc: c.nodeDeleted,
		}},
		{leases.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.leaseChanged,
			UpdateFunc: func(_, obj any) { c.leaseChanged(obj) },
		}},
		{pods.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.podChanged,
			UpdateFunc: func(_, obj any) { c.podChanged(obj) },
			DeleteFunc: c.podDeleted,
		}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		c.synced = append(c.synced, h.inf.HasSynced)
	}
	c.nodes, c.leases, c.pods = nodes.Lister(), leases.Lister(), pods.Lister()
	c.podIndex = pods.Informer().GetIndexer()
	return c, nil
}

// Start runs the controller until ctx ends; it returns after its workers
// and its periodic check have exited.
func (c *Controller) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(3)
	go func() { defer wg.Done(); errs <- c.nodeQ.Run(ctx, c.opts.Workers, c.synced...) }()
	go func() { defer wg.Done(); errs <- c.podQ.Run(ctx, c.opts.Workers, c.synced...) }()
	go func() { defer wg.Done(); c.periodic(ctx) }()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

// periodic queues every node each min(5 s, grace/8): heartbeats expire
// without any event.
func (c *Controller) periodic(ctx context.Context) {
	period := min(5*time.Second, c.opts.GracePeriod/8)
	t := c.clock.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			nodes, err := c.nodes.List(labels.Everything())
			if err != nil {
				continue
			}
			for _, n := range nodes {
				c.nodeQ.Add(n.Name)
			}
		}
	}
}

func indexByNode(obj any) ([]string, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok || p.Spec.NodeName == "" {
		return nil, nil
	}
	return []string{p.Spec.NodeName}, nil
}

func (c *Controller) leaseChanged(obj any) {
	if l, ok := obj.(*coordinationv1.Lease); ok && l.Namespace == leaseNamespace {
		c.nodeQ.Add(l.Name)
	}
}

func (c *Controller) podChanged(obj any) {
	if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" && p.DeletionTimestamp == nil {
		c.podQ.Enqueue(p)
	}
}

// nodeUpdated queues the node, and its pods when its taints or readiness
// changed (eviction and marking pods not ready are decided per pod).
func (c *Controller) nodeUpdated(oldObj, obj any) {
	c.nodeQ.Enqueue(obj)
	old, ok1 := oldObj.(*corev1.Node)
	cur, ok2 := obj.(*corev1.Node)
	if !ok1 || !ok2 {
		return
	}
	or, cr := condition(old, corev1.NodeReady), condition(cur, corev1.NodeReady)
	readyChanged := (or == nil) != (cr == nil) || (or != nil && cr != nil && or.Status != cr.Status)
	if readyChanged || !taintsEqual(old.Spec.Taints, cur.Spec.Taints) {
		c.enqueuePods(cur.Name)
	}
}

func (c *Controller) nodeDeleted(obj any) {
	c.nodeQ.Enqueue(obj)
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if n, ok := obj.(*corev1.Node); ok {
		c.enqueuePods(n.Name) // orphans now
	}
}

func (c *Controller) enqueuePods(node string) {
	objs, err := c.podIndex.ByIndex(podsByNode, node)
	if err != nil {
		return
	}
	for _, o := range objs {
		c.podQ.Enqueue(o)
	}
}

func taintsEqual(a, b []corev1.Taint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || a[i].Value != b[i].Value || a[i].Effect != b[i].Effect || !a[i].TimeAdded.Equal(b[i].TimeAdded) {
			return false
		}
	}
	return true
}
