// Package daemonset is the DaemonSet controller (apps/v1): it keeps one pod
// of each DaemonSet on every eligible node. A node is eligible when it
// matches the template's nodeSelector and required node affinity and every
// NoSchedule/NoExecute taint is tolerated, counting the tolerations upstream
// adds to every daemon pod (not-ready, unreachable, disk/memory/pid
// pressure, unschedulable, and network-unavailable for hostNetwork). Like
// upstream, the controller does not bind pods: it pins each one to its node
// with required node affinity matchFields metadata.name In [node] and lets
// the scheduler place it.
//
// Template versions are ControllerRevisions named "<ds>-<hash>" holding a
// patch that restores the template (what kubectl rollout history/undo
// read); pods carry the controller-revision-hash and pod-template-generation
// labels. updateStrategy RollingUpdate (maxUnavailable, maxSurge) and
// OnDelete are honoured. Status carries every counter kubectl rollout
// status reads.
//
// Differs from upstream: failed daemon pods are replaced without upstream's
// per-node back-off, the revision hash is computed differently (so hash
// values differ from upstream's for the same template), and node
// eligibility does not consider resources or host ports (the scheduler
// does).
package daemonset

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/skiff-io/skiff/internal/controller/podset"
	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

const name = "daemonset"

var gvk = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// Options tune the controller.
type Options struct {
	// Workers is the number of DaemonSets reconciled at once (default 2).
	Workers int
	// Clock tells the time (default the real clock).
	Clock clock.Clock
}

// Controller is the DaemonSet controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	workers  int
	clock    clock.Clock

	sets      appslisters.DaemonSetLister
	nodes     corelisters.NodeLister
	pods      cache.Indexer
	revisions cache.Indexer
	synced    []cache.InformerSynced

	exp   *podset.Expectations
	queue *reconcile.Queue
}

// New builds the controller and registers its DaemonSet, Node, Pod and
// ControllerRevision informers (with indexes by controller UID) and
// handlers on factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts ...Options) (*Controller, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", name)
	}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if recorder == nil {
		recorder = &record.FakeRecorder{}
	}
	c := &Controller{client: client, recorder: recorder, log: slog.Default().With("controller", name), workers: o.Workers, clock: o.Clock, exp: podset.NewExpectations()}
	c.queue = reconcile.New(name, c.sync)

	dsInf := factory.Apps().V1().DaemonSets()
	c.sets = dsInf.Lister()
	if _, err := dsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.queue.Enqueue,
		UpdateFunc: func(_, obj any) { c.queue.Enqueue(obj) },
		DeleteFunc: func(obj any) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				c.exp.Forget(key)
			}
			c.queue.Enqueue(obj)
		},
	}); err != nil {
		return nil, fmt.Errorf("%s: daemonset handler: %w", name, err)
	}

	nodeInf := factory.Core().V1().Nodes()
	c.nodes = nodeInf.Lister()
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.enqueueAll() },
		UpdateFunc: func(old, obj any) {
			o, ok1 := old.(*corev1.Node)
			n, ok2 := obj.(*corev1.Node)
			if !ok1 || !ok2 || nodeChanged(o, n) {
				c.enqueueAll()
			}
		},
		DeleteFunc: func(any) { c.enqueueAll() },
	}); err != nil {
		return nil, fmt.Errorf("%s: node handler: %w", name, err)
	}

	podInf := factory.Core().V1().Pods().Informer()
	if err := podset.AddControllerUIDIndex(podInf); err != nil {
		return nil, fmt.Errorf("%s: pod indexer: %w", name, err)
	}
	c.pods = podInf.GetIndexer()
	if _, err := podInf.AddEventHandler(podset.Handler(gvk, c.exp, c.queue.Add)); err != nil {
		return nil, fmt.Errorf("%s: pod handler: %w", name, err)
	}

	revInf := factory.Apps().V1().ControllerRevisions().Informer()
	if err := podset.AddControllerUIDIndex(revInf); err != nil {
		return nil, fmt.Errorf("%s: controllerrevision indexer: %w", name, err)
	}
	c.revisions = revInf.GetIndexer()
	c.synced = []cache.InformerSynced{dsInf.Informer().HasSynced, nodeInf.Informer().HasSynced, podInf.HasSynced, revInf.HasSynced}
	return c, nil
}

// Start waits for the caches to sync, reconciles DaemonSets until ctx
// ends, and returns after the workers have exited.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting", "workers", c.workers)
	return c.queue.Run(ctx, c.workers, c.synced...)
}

// enqueueAll queues every DaemonSet: a node change can concern any of
// them, and there are few DaemonSets.
func (c *Controller) enqueueAll() {
	sets, err := c.sets.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range sets {
		c.queue.Enqueue(ds)
	}
}

// nodeChanged reports whether an update can change which daemons belong on
// the node: its labels, taints or deletion, not its heartbeats.
func nodeChanged(old, n *corev1.Node) bool {
	return !reflect.DeepEqual(old.Labels, n.Labels) || !reflect.DeepEqual(old.Spec.Taints, n.Spec.Taints) ||
		(old.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil)
}
