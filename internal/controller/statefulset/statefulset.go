// Package statefulset is the StatefulSet controller: it gives each set
// pods with stable identities <set>-<ordinal> (hostname, subdomain, the
// statefulset.kubernetes.io/pod-name and apps.kubernetes.io/pod-index
// labels) and stable storage (PersistentVolumeClaims
// <claim>-<set>-<ordinal> created from volumeClaimTemplates before the
// pod), creates and deletes them in order (OrderedReady) or all at once
// (Parallel), and rolls template changes out by deleting and recreating
// pods from the highest ordinal down to the partition (RollingUpdate) or
// leaves that to the user (OnDelete).
//
// Each distinct pod template is a ControllerRevision <set>-<hash> owned by
// the set; pods carry the controller-revision-hash label of the revision
// they were built from, and status reports current and update revisions
// the way kubectl rollout status and rollout history expect.
//
// # Claim retention
//
// spec.persistentVolumeClaimRetentionPolicy (upstream's
// StatefulSetAutoDeletePVC, GA in 1.32) is carried out as upstream does,
// with owner references that the garbage collector acts on (retention.go):
// under whenDeleted Delete each claim is controlled by the set, so it goes
// with the set; under whenScaled Delete the claims of a pod whose ordinal
// is outside [start, start+replicas) are controlled by the pod (instead of
// the set), set before the pod is deleted, so they go with it. Retain
// removes the references the controller would otherwise set, and a pod
// back in range loses its pod reference. A claim with another controller,
// or referring to an earlier set or pod of the same name, is left alone.
// A pod is not created while its claim is being deleted or is owned by an
// earlier pod of its name; the claim's deletion wakes the set.
//
// Where skiff differs from upstream on purpose: claims are created owned
// by the set (upstream adds the reference on a later sync, and leaks the
// claim if the set goes in between); every pod in range has its claims
// checked on each sync (upstream: the pods its ordered walk reaches); a
// claim owned by an earlier pod holds back the new pod under any
// whenScaled policy (upstream: under Delete only).
//
// The decisions are a pure function of a snapshot (decide in plan.go);
// sync.go reads the snapshot from the informer caches and carries them out.
package statefulset

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/controller/podset"
	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

const name = "statefulset"

var gvk = appsv1.SchemeGroupVersion.WithKind("StatefulSet")

// Options tune the controller.
type Options struct {
	// Workers is the number of sets reconciled at once (default 5).
	Workers int
}

// Controller is the StatefulSet controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	workers  int

	sets      appslisters.StatefulSetLister
	pods      cache.Indexer
	revisions cache.Indexer
	claims    corelisters.PersistentVolumeClaimLister
	synced    []cache.InformerSynced

	queue *reconcile.Queue
	now   func() time.Time
}

// New builds the controller and registers its StatefulSet, Pod,
// ControllerRevision and PersistentVolumeClaim informers (with indexes by
// controller) and event handlers on factory. The caller starts the
// factory; Start waits for it to sync.
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

	setInf := factory.Apps().V1().StatefulSets()
	c.sets = setInf.Lister()
	if _, err := setInf.Informer().AddEventHandler(c.queue.Handler()); err != nil {
		return nil, fmt.Errorf("%s: statefulset handler: %w", name, err)
	}

	podInf := factory.Core().V1().Pods().Informer()
	if err := podset.AddControllerUIDIndex(podInf); err != nil {
		return nil, fmt.Errorf("%s: pod indexers: %w", name, err)
	}
	if err := podset.AddOrphanIndex(podInf); err != nil {
		return nil, fmt.Errorf("%s: pod indexers: %w", name, err)
	}
	c.pods = podInf.GetIndexer()
	if _, err := podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.podChanged,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.podChanged,
	}); err != nil {
		return nil, fmt.Errorf("%s: pod handler: %w", name, err)
	}

	revInf := factory.Apps().V1().ControllerRevisions().Informer()
	if err := podset.AddControllerUIDIndex(revInf); err != nil {
		return nil, fmt.Errorf("%s: revision indexers: %w", name, err)
	}
	c.revisions = revInf.GetIndexer()
	if _, err := revInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.enqueueController(obj) },
		UpdateFunc: func(_, obj any) { c.enqueueController(obj) },
		DeleteFunc: func(obj any) { c.enqueueController(obj) },
	}); err != nil {
		return nil, fmt.Errorf("%s: revision handler: %w", name, err)
	}

	claimInf := factory.Core().V1().PersistentVolumeClaims()
	c.claims = claimInf.Lister()
	if _, err := claimInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: c.claimDeleted}); err != nil {
		return nil, fmt.Errorf("%s: claim handler: %w", name, err)
	}

	c.synced = []cache.InformerSynced{setInf.Informer().HasSynced, podInf.HasSynced, revInf.HasSynced, claimInf.Informer().HasSynced}
	return c, nil
}

// Start waits for the caches to sync, reconciles sets with the configured
// workers until ctx ends, and returns after they have exited.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting", "workers", c.workers)
	return c.queue.Run(ctx, c.workers, c.synced...)
}

// enqueueController queues the set that controls obj (a pod or revision,
// possibly a tombstone) and reports whether there was one.
func (c *Controller) enqueueController(obj any) bool {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return false
	}
	ref := metav1.GetControllerOfNoCopy(m)
	if ref == nil || ref.Kind != gvk.Kind || ref.APIVersion != gvk.GroupVersion().String() {
		return ref != nil
	}
	set, err := c.sets.StatefulSets(m.GetNamespace()).Get(ref.Name)
	if err != nil || set.UID != ref.UID {
		return true
	}
	c.queue.Add(m.GetNamespace() + "/" + set.Name)
	return true
}

func (c *Controller) podChanged(obj any) {
	if c.enqueueController(obj) {
		return
	}
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if p, ok := obj.(*corev1.Pod); ok {
		c.enqueueMatching(p)
	}
}

func (c *Controller) updatePod(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Pod)
	cur, ok2 := newObj.(*corev1.Pod)
	if !ok1 || !ok2 || old.ResourceVersion == cur.ResourceVersion {
		return
	}
	if oldRef, curRef := metav1.GetControllerOf(old), metav1.GetControllerOf(cur); oldRef != nil && (curRef == nil || curRef.UID != oldRef.UID) {
		c.enqueueController(old)
	}
	c.podChanged(cur)
}

// enqueueMatching queues the sets an orphan pod could belong to: in its
// namespace, selector matching, and named like one of the set's pods.
func (c *Controller) enqueueMatching(p *corev1.Pod) {
	if len(p.Labels) == 0 || p.DeletionTimestamp != nil {
		return
	}
	sets, err := c.sets.StatefulSets(p.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, set := range sets {
		if _, ok := ordinalOf(set.Name, p.Name); !ok {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(p.Labels)) {
			c.queue.Add(set.Namespace + "/" + set.Name)
		}
	}
}
