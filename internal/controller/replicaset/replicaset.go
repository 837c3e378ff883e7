// Package replicaset is the ReplicaSet controller: it keeps spec.replicas
// active pods matching each ReplicaSet's selector, adopting matching
// orphans and releasing pods that stop matching, creating missing pods
// from the template in slow-start batches and deleting surplus pods in
// podset.RankForDeletion order, and reports replicas, fullyLabeled, ready
// and available pods in status.
//
// Like upstream it waits, per ReplicaSet, until the informer has seen the
// creates and deletes it issued ("expectations") before it creates or
// deletes again. Pods are found through an index by controller UID plus an
// index of orphans by namespace, so a reconcile touches only the pods that
// can concern its ReplicaSet, never every pod in the namespace.
//
// The same controller, built with NewFor over another Source, manages
// ReplicationControllers (internal/controller/replication), as upstream's
// replication manager is its ReplicaSet controller behind an adapter.
package replicaset

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/controller/podset"
	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

// Name is the controller's name (kube-controller-manager's --controllers
// name), in logs and the workqueue metrics.
const Name = "replicaset"

// Options tune the controller.
type Options struct {
	// Workers is the number of ReplicaSets reconciled at once (default 5).
	Workers int
}

// Controller is the ReplicaSet controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	workers  int

	// src holds the objects reconciled, gvk their kind and kind its
	// lower-case name for errors ("replicaset").
	src  Source
	gvk  schema.GroupVersionKind
	kind string

	pods     cache.Indexer
	podsSync cache.InformerSynced

	exp   *podset.Expectations
	queue *reconcile.Queue
	now   func() time.Time
}

// New builds the controller and registers its ReplicaSet and Pod informers
// (with two pod indexes) and event handlers on factory. The caller starts
// the factory; Start waits for it to sync.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts ...Options) (*Controller, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", Name)
	}
	return NewFor(Name, ReplicaSets(client, factory), client, factory, recorder, opts...)
}

// NewFor builds the controller, named name, over the objects src holds,
// and registers event handlers on src's informer and the Pod informer of
// factory (with two pod indexes). client creates, patches and deletes
// pods. The caller starts the factory; Start waits for it to sync.
func NewFor(name string, src Source, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts ...Options) (*Controller, error) {
	if src == nil || client == nil || factory == nil {
		return nil, fmt.Errorf("%s: source, client and informer factory are required", name)
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
		src:      src,
		gvk:      src.GroupVersionKind(),
		kind:     strings.ToLower(src.GroupVersionKind().Kind),
		exp:      podset.NewExpectations(),
		now:      time.Now,
	}
	c.queue = reconcile.New(name, c.sync)

	if _, err := src.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.queue.Enqueue,
		UpdateFunc: func(_, obj any) { c.queue.Enqueue(obj) },
		DeleteFunc: c.deleteRS,
	}); err != nil {
		return nil, fmt.Errorf("%s: %s handler: %w", name, c.kind, err)
	}

	podInf := factory.Core().V1().Pods().Informer()
	if err := podset.AddControllerUIDIndex(podInf); err != nil {
		return nil, fmt.Errorf("%s: pod indexers: %w", name, err)
	}
	if err := podset.AddOrphanIndex(podInf); err != nil {
		return nil, fmt.Errorf("%s: pod indexers: %w", name, err)
	}
	c.pods = podInf.GetIndexer()
	c.podsSync = podInf.HasSynced
	if _, err := podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	}); err != nil {
		return nil, fmt.Errorf("%s: pod handler: %w", name, err)
	}
	return c, nil
}

// Start waits for the caches to sync, reconciles ReplicaSets with the
// configured workers until ctx ends, and returns after they have exited.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting", "workers", c.workers)
	return c.queue.Run(ctx, c.workers, c.src.Informer().HasSynced, c.podsSync)
}

// deleteRS handles the deletion of a reconciled object (of the source's
// own type).
func (c *Controller) deleteRS(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	c.exp.Forget(keyOf(m.GetNamespace(), m.GetName()))
	c.queue.Enqueue(obj)
}

// controllerRS returns the ReplicaSet a controller reference names, if it
// is of the source's kind and in the cache with that UID.
func (c *Controller) controllerRS(namespace string, ref *metav1.OwnerReference) *appsv1.ReplicaSet {
	if ref == nil || ref.Kind != c.gvk.Kind || ref.APIVersion != c.gvk.GroupVersion().String() {
		return nil
	}
	rs, err := c.src.Get(namespace, ref.Name)
	if err != nil || rs.UID != ref.UID {
		return nil
	}
	return rs
}

// eventObject is what events about rs are recorded on: a reference to the
// object of the source's kind that rs stands for.
func (c *Controller) eventObject(rs *appsv1.ReplicaSet) *corev1.ObjectReference {
	return &corev1.ObjectReference{
		Kind:            c.gvk.Kind,
		APIVersion:      c.gvk.GroupVersion().String(),
		Namespace:       rs.Namespace,
		Name:            rs.Name,
		UID:             rs.UID,
		ResourceVersion: rs.ResourceVersion,
	}
}

// enqueueMatching queues every ReplicaSet in the pod's namespace whose
// selector matches it: the candidates to adopt an orphan.
func (c *Controller) enqueueMatching(p *corev1.Pod) {
	if len(p.Labels) == 0 {
		return
	}
	sets, err := c.src.List(p.Namespace)
	if err != nil {
		return
	}
	for _, rs := range sets {
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(p.Labels)) {
			c.queue.Add(keyOf(rs.Namespace, rs.Name))
		}
	}
}

func (c *Controller) addPod(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if p.DeletionTimestamp != nil {
		// A pod that shows up already being deleted (a relist) counts as
		// a deletion, so that expectations are not stuck on it.
		c.deletePod(p)
		return
	}
	if ref := metav1.GetControllerOf(p); ref != nil {
		if rs := c.controllerRS(p.Namespace, ref); rs != nil {
			key := keyOf(rs.Namespace, rs.Name)
			c.exp.CreationObserved(key)
			c.queue.Add(key)
		}
		return
	}
	c.enqueueMatching(p)
}

func (c *Controller) updatePod(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Pod)
	cur, ok2 := newObj.(*corev1.Pod)
	if !ok1 || !ok2 || old.ResourceVersion == cur.ResourceVersion {
		return
	}
	oldRef, curRef := metav1.GetControllerOf(old), metav1.GetControllerOf(cur)
	if cur.DeletionTimestamp != nil && old.DeletionTimestamp == nil {
		// Graceful deletion started: the pod no longer counts, act now
		// rather than after the grace period.
		c.deletePod(cur)
		if oldRef != nil && (curRef == nil || oldRef.UID != curRef.UID) {
			c.deletePod(old)
		}
		return
	}
	if oldRef != nil && (curRef == nil || oldRef.UID != curRef.UID) {
		if rs := c.controllerRS(old.Namespace, oldRef); rs != nil {
			c.queue.Add(keyOf(rs.Namespace, rs.Name))
		}
	}
	if curRef != nil {
		if rs := c.controllerRS(cur.Namespace, curRef); rs != nil {
			key := keyOf(rs.Namespace, rs.Name)
			c.queue.Add(key)
			// A pod that just became ready becomes available after
			// minReadySeconds: look again then.
			if rs.Spec.MinReadySeconds > 0 && !podset.IsReady(old) && podset.IsReady(cur) {
				c.queue.AddAfter(key, time.Duration(rs.Spec.MinReadySeconds)*time.Second+time.Second)
			}
		}
		return
	}
	if !labels.Equals(old.Labels, cur.Labels) || oldRef != nil {
		c.enqueueMatching(cur)
	}
}

func (c *Controller) deletePod(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	rs := c.controllerRS(p.Namespace, metav1.GetControllerOf(p))
	if rs == nil {
		return
	}
	key := keyOf(rs.Namespace, rs.Name)
	c.exp.DeletionObserved(key, keyOf(p.Namespace, p.Name))
	c.queue.Add(key)
}
