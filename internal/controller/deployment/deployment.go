// Package deployment is the Deployment controller: it rolls a
// Deployment's pod template out through ReplicaSets named
// <deployment>-<pod-template-hash>, one per template, scaling the new one
// up and the old ones down as the RollingUpdate (maxSurge,
// maxUnavailable) or Recreate strategy allows, numbers rollouts with the
// deployment.kubernetes.io/revision annotation that kubectl rollout
// history and undo use, scales proportionally when spec.replicas changes
// mid-rollout, honours spec.paused, deletes old ReplicaSets beyond
// revisionHistoryLimit, and reports status with the Available and
// Progressing conditions (progress deadline included) as upstream does.
//
// Beyond upstream, a Deployment annotated skiff.io/auto-rollback: "true"
// whose rollout exceeds its progress deadline is rolled back to its last
// fully available revision (docs/auto-rollback.md).
//
// The controller does not watch pods: the ReplicaSet controller reports
// replicas, ready and available pods in ReplicaSet status, and this
// controller reads only that. Every decision is made by decide, a pure
// function of the Deployment, its ReplicaSets and the time; sync claims the
// ReplicaSets, calls it and writes the result.
package deployment

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

const name = "deployment"

// Index names on the shared ReplicaSet informer, owned by this package.
const (
	indexByController = "deployment.skiff.io/controller-uid"
	indexOrphans      = "deployment.skiff.io/orphans"
)

var gvk = appsv1.SchemeGroupVersion.WithKind("Deployment")

// Options tune the controller.
type Options struct {
	// Workers is the number of Deployments reconciled at once (default 5).
	Workers int
}

// Controller is the Deployment controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	workers  int

	dLister  appslisters.DeploymentLister
	dSynced  cache.InformerSynced
	rsIndex  cache.Indexer
	rsSynced cache.InformerSynced

	queue *reconcile.Queue
	now   func() time.Time
}

// New builds the controller and registers its Deployment and ReplicaSet
// informers (with two ReplicaSet indexes) and event handlers on factory.
// The caller starts the factory; Start waits for it to sync.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts ...Options) (*Controller, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", name)
	}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Workers <= 0 {
		o.Workers = 5
	}
	if recorder == nil {
		recorder = &record.FakeRecorder{}
	}
	c := &Controller{
		client:   client,
		recorder: recorder,
		log:      slog.Default().With("controller", name),
		workers:  o.Workers,
		now:      time.Now,
	}
	c.queue = reconcile.New(name, c.sync)

	dInf := factory.Apps().V1().Deployments()
	rsInf := factory.Apps().V1().ReplicaSets()
	if err := rsInf.Informer().AddIndexers(cache.Indexers{
		indexByController: byController,
		indexOrphans:      orphans,
	}); err != nil {
		return nil, fmt.Errorf("%s: replicaset indexes: %w", name, err)
	}
	if _, err := dInf.Informer().AddEventHandler(c.queue.Handler()); err != nil {
		return nil, fmt.Errorf("%s: deployment handler: %w", name, err)
	}
	if _, err := rsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.rsChanged,
		UpdateFunc: func(old, cur any) { c.rsUpdated(old, cur) },
		DeleteFunc: c.rsChanged,
	}); err != nil {
		return nil, fmt.Errorf("%s: replicaset handler: %w", name, err)
	}
	c.dLister = dInf.Lister()
	c.dSynced = dInf.Informer().HasSynced
	c.rsIndex = rsInf.Informer().GetIndexer()
	c.rsSynced = rsInf.Informer().HasSynced
	return c, nil
}

// Start waits for the caches, runs the workers until ctx ends and returns
// after they have exited.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting", "workers", c.workers)
	return c.queue.Run(ctx, c.workers, c.dSynced, c.rsSynced)
}

// byController indexes ReplicaSets by the UID of their controller.
func byController(obj any) ([]string, error) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOf(rs); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

// orphans indexes ReplicaSets without a controller by namespace.
func orphans(obj any) ([]string, error) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok || metav1.GetControllerOf(rs) != nil {
		return nil, nil
	}
	return []string{rs.Namespace}, nil
}

// rsChanged queues the Deployment that controls a ReplicaSet, or for an
// orphan every Deployment in its namespace whose selector matches it.
func (c *Controller) rsChanged(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok || rs == nil {
		return
	}
	if ref := metav1.GetControllerOf(rs); ref != nil {
		c.enqueueOwner(rs.Namespace, ref)
		return
	}
	ds, err := c.dLister.Deployments(rs.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, d := range ds {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(rs.Labels)) {
			continue
		}
		c.queue.Enqueue(d)
	}
}

// rsUpdated also queues the former controller when the controller
// reference changed.
func (c *Controller) rsUpdated(old, cur any) {
	o, ok1 := old.(*appsv1.ReplicaSet)
	n, ok2 := cur.(*appsv1.ReplicaSet)
	if ok1 && ok2 && o != nil && n != nil {
		if or := metav1.GetControllerOf(o); or != nil {
			if nr := metav1.GetControllerOf(n); nr == nil || nr.UID != or.UID {
				c.enqueueOwner(o.Namespace, or)
			}
		}
	}
	c.rsChanged(cur)
}

func (c *Controller) enqueueOwner(ns string, ref *metav1.OwnerReference) {
	if ref.Kind != gvk.Kind || ref.APIVersion != gvk.GroupVersion().String() {
		return
	}
	d, err := c.dLister.Deployments(ns).Get(ref.Name)
	if err != nil || d.UID != ref.UID {
		return
	}
	c.queue.Enqueue(d)
}
