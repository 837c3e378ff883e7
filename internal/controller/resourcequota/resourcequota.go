// Package resourcequota is the ResourceQuota controller: it keeps each
// quota's status.hard equal to spec.hard and status.used equal to what the
// namespace holds (usage.go: pod counts and compute requests/limits, object
// counts, count/<resource>.<group> of the workload kinds in countedKinds,
// services.nodeports/loadbalancers, PVC storage; scopes Terminating,
// NotTerminating, BestEffort, NotBestEffort and PriorityClass). It
// recomputes a namespace's quotas when a quota's spec changes, when pods,
// services, configmaps, secrets, PVCs or those workloads there are deleted
// or change in a way that can release usage, and every quota every 5
// minutes. Enforcement is the API server's admission
// (internal/admission/resourcequota.go), which measures a write with the
// same functions (evaluate.go) and charges status.used before the object
// is stored: what a create adds is charged there, as upstream, not here.
package resourcequota

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
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

const name = "resourcequota"

// Options tune the controller.
type Options struct {
	// Workers is the number of quotas reconciled at once (default 5).
	Workers int
	// Resync is how often every quota is recomputed (default 5 minutes).
	Resync time.Duration
}

// Controller is the ResourceQuota controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	opts     Options
	now      func() time.Time

	quotas     corelisters.ResourceQuotaLister
	pods       corelisters.PodLister
	services   corelisters.ServiceLister
	configMaps corelisters.ConfigMapLister
	secrets    corelisters.SecretLister
	pvcs       corelisters.PersistentVolumeClaimLister
	rcs        corelisters.ReplicationControllerLister
	// counted lists the objects of countedKinds, by quota resource name
	// (count/replicasets.apps).
	counted map[corev1.ResourceName]cache.GenericLister
	synced  []cache.InformerSynced
	queue   *reconcile.Queue
}

// New builds the controller and registers its ResourceQuota, Pod, Service,
// ConfigMap, Secret, PersistentVolumeClaim and ReplicationController
// informers and handlers on factory. The caller starts the factory; Start waits for it to sync.
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
	if o.Resync <= 0 {
		o.Resync = 5 * time.Minute
	}
	if recorder == nil {
		recorder = &record.FakeRecorder{}
	}
	c := &Controller{client: client, recorder: recorder, log: slog.Default().With("controller", name), opts: o, now: time.Now}
	c.queue = reconcile.New(name, c.sync)
	core := factory.Core().V1()

	qInf := core.ResourceQuotas()
	c.quotas = qInf.Lister()
	if _, err := qInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.enqueueNamespace(obj) }, // resourcequotas count themselves
		// Only a change of spec is acted on, as upstream: status changes
		// are this controller's own writes and quota admission's charges,
		// and recomputing on a charge could undo it before the caches
		// hold the object charged. A status edited by hand is put right
		// at the next resync.
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*corev1.ResourceQuota)
			n, ok2 := cur.(*corev1.ResourceQuota)
			if ok1 && ok2 && apiequality.Semantic.DeepEqual(o.Spec, n.Spec) {
				return
			}
			c.queue.Enqueue(cur)
		},
		DeleteFunc: func(obj any) { c.enqueueNamespace(obj) },
	}); err != nil {
		return nil, fmt.Errorf("%s: quota handler: %w", name, err)
	}

	// Objects are not recomputed on add, as upstream: quota admission
	// charged them before they were stored, and a recompute from caches
	// that may not yet hold other objects charged meanwhile would undo
	// those charges, letting racing creates pass the limit. Updates that
	// can change usage, and deletes, release usage here.
	podInf := core.Pods()
	c.pods = podInf.Lister()
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*corev1.Pod)
			n, ok2 := cur.(*corev1.Pod)
			if ok1 && ok2 && !podChanged(o, n) {
				return
			}
			c.enqueueNamespace(cur)
		},
		DeleteFunc: c.enqueueNamespace,
	}); err != nil {
		return nil, fmt.Errorf("%s: pod handler: %w", name, err)
	}
	// Counts change on delete (adds are charged by admission); services
	// also when their type or node ports change, PVCs on any update
	// (requested storage, class).
	countOnly := cache.ResourceEventHandlerFuncs{DeleteFunc: c.enqueueNamespace}
	everyChange := cache.ResourceEventHandlerFuncs{UpdateFunc: func(_, cur any) { c.enqueueNamespace(cur) }, DeleteFunc: c.enqueueNamespace}
	serviceChange := cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*corev1.Service)
			n, ok2 := cur.(*corev1.Service)
			if ok1 && ok2 && o.Spec.Type == n.Spec.Type && nodePorts(o) == nodePorts(n) {
				return
			}
			c.enqueueNamespace(cur)
		},
		DeleteFunc: c.enqueueNamespace,
	}

	svcInf := core.Services()
	c.services = svcInf.Lister()
	cmInf := core.ConfigMaps()
	c.configMaps = cmInf.Lister()
	secInf := core.Secrets()
	c.secrets = secInf.Lister()
	pvcInf := core.PersistentVolumeClaims()
	c.pvcs = pvcInf.Lister()
	rcInf := core.ReplicationControllers()
	c.rcs = rcInf.Lister()
	for _, h := range []struct {
		inf     cache.SharedIndexInformer
		handler cache.ResourceEventHandlerFuncs
	}{
		{svcInf.Informer(), serviceChange},
		{cmInf.Informer(), countOnly},
		{secInf.Informer(), countOnly},
		{pvcInf.Informer(), everyChange},
		{rcInf.Informer(), countOnly},
	} {
		if _, err := h.inf.AddEventHandler(h.handler); err != nil {
			return nil, fmt.Errorf("%s: handler: %w", name, err)
		}
	}
	c.synced = []cache.InformerSynced{
		qInf.Informer().HasSynced, podInf.Informer().HasSynced, svcInf.Informer().HasSynced,
		cmInf.Informer().HasSynced, secInf.Informer().HasSynced, pvcInf.Informer().HasSynced, rcInf.Informer().HasSynced,
	}
	// The workload kinds counted as count/<resource>.<group>: informers
	// the controller manager's other controllers share.
	c.counted = map[corev1.ResourceName]cache.GenericLister{}
	for _, gvr := range countedKinds {
		inf, err := factory.ForResource(gvr)
		if err != nil {
			return nil, fmt.Errorf("%s: %s informer: %w", name, gvr, err)
		}
		if _, err := inf.Informer().AddEventHandler(countOnly); err != nil {
			return nil, fmt.Errorf("%s: %s handler: %w", name, gvr, err)
		}
		c.counted[CountName(gvr.GroupResource())] = inf.Lister()
		c.synced = append(c.synced, inf.Informer().HasSynced)
	}
	return c, nil
}

// Start waits for the caches to sync, reconciles quotas until ctx ends,
// and returns after its workers have exited.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting", "workers", c.opts.Workers)
	return c.queue.Run(ctx, c.opts.Workers, c.synced...)
}

// podChanged reports whether a pod update can change quota usage as
// upstream's update filter sees it: the pod leaves or enters the
// Terminating scope, stops counting (finished, or past its deletion grace
// period), or its container resources change. A pod starting to run, or
// starting graceful deletion, changes nothing.
func podChanged(o, n *corev1.Pod) bool {
	if IsTerminating(o) != IsTerminating(n) {
		return true
	}
	now := time.Now()
	if podCounts(o, now) && !podCounts(n, now) {
		return true
	}
	if len(o.Spec.Containers) != len(n.Spec.Containers) {
		return true
	}
	for i := range o.Spec.Containers {
		if !apiequality.Semantic.DeepEqual(o.Spec.Containers[i].Resources, n.Spec.Containers[i].Resources) {
			return true
		}
	}
	return false
}

// enqueueNamespace queues every quota in obj's namespace.
func (c *Controller) enqueueNamespace(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok || m.GetNamespace() == "" {
		return
	}
	qs, err := c.quotas.ResourceQuotas(m.GetNamespace()).List(labels.Everything())
	if err != nil {
		return
	}
	for _, q := range qs {
		c.queue.Add(q.Namespace + "/" + q.Name)
	}
}

// sync recomputes the status of the quota named by key.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, qName, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	quota, err := c.quotas.ResourceQuotas(ns).Get(qName)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	snap, err := c.snapshot(ns)
	if err != nil {
		return fmt.Errorf("quota %s: %w", key, err)
	}
	next := quota.DeepCopy()
	next.Status.Hard = quota.Spec.Hard.DeepCopy()
	next.Status.Used = usage(quota, snap, c.now())
	if !statusEqual(quota.Status, next.Status) {
		if _, err := c.client.CoreV1().ResourceQuotas(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("updating status of quota %s: %w", key, err)
		}
	}
	c.queue.AddAfter(key, c.opts.Resync)
	return nil
}

// statusEqual compares quota statuses by quantity value (1000m == 1).
func statusEqual(a, b corev1.ResourceQuotaStatus) bool {
	return listEqual(a.Hard, b.Hard) && listEqual(a.Used, b.Used)
}

func listEqual(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v.Cmp(w) != 0 {
			return false
		}
	}
	return true
}

func (c *Controller) snapshot(ns string) (snapshot, error) {
	var s snapshot
	var err error
	all := labels.Everything()
	if s.pods, err = c.pods.Pods(ns).List(all); err != nil {
		return s, err
	}
	if s.services, err = c.services.Services(ns).List(all); err != nil {
		return s, err
	}
	if s.pvcs, err = c.pvcs.PersistentVolumeClaims(ns).List(all); err != nil {
		return s, err
	}
	cms, err := c.configMaps.ConfigMaps(ns).List(all)
	if err != nil {
		return s, err
	}
	s.configMaps = len(cms)
	secrets, err := c.secrets.Secrets(ns).List(all)
	if err != nil {
		return s, err
	}
	s.secrets = len(secrets)
	rcs, err := c.rcs.ReplicationControllers(ns).List(all)
	if err != nil {
		return s, err
	}
	s.replicationControllers = len(rcs)
	quotas, err := c.quotas.ResourceQuotas(ns).List(all)
	if err != nil {
		return s, err
	}
	s.quotas = len(quotas)
	s.counts = make(map[corev1.ResourceName]int, len(c.counted))
	for rn, l := range c.counted {
		objs, err := l.ByNamespace(ns).List(all)
		if err != nil {
			return s, err
		}
		s.counts[rn] = len(objs)
	}
	return s, nil
}
