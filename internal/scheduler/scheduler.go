package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	storageinformers "k8s.io/client-go/informers/storage/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// Scheduler binds pending pods of its scheduler name to nodes.
type Scheduler struct {
	cfg      Config
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger

	cache *Cache
	queue *Queue
	algo  *algorithm

	pods  corelisters.PodLister
	nodes corelisters.NodeLister
	// volumes is the view of claims, volumes and classes the volume
	// filters read; classes feeds its class lister and runs only if the
	// server serves storage.k8s.io/v1 (Start asks).
	volumes *volumeBinder
	classes cache.SharedIndexInformer
	// preBinds are the goroutines of pods waiting for their volumes.
	preBinds sync.WaitGroup
	// spread finds the Services and controllers that make a pod's system
	// default topology spread selector.
	spread *spreadSelectors
	synced []cache.InformerSynced
	// jobs carries API work from the decision loop to the bind workers.
	jobs    chan func(context.Context)
	metrics *Metrics
}

// New returns a scheduler that takes pods with spec.schedulerName
// cfg.SchedulerName. It registers pod, node and namespace informers and
// their handlers on factory, Service, ReplicaSet and StatefulSet informers
// for the default topology spread, and PersistentVolumeClaim and
// PersistentVolume informers (the latter with an index by storage class)
// for the volume filters; the caller starts the factory. StorageClasses
// are watched by an informer of the scheduler's own, which Start runs if
// the server serves them.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, cfg Config) (*Scheduler, error) {
	if client == nil || factory == nil || recorder == nil {
		return nil, fmt.Errorf("scheduler: client, informer factory and event recorder are required")
	}
	cfg = cfg.withDefaults()
	s := &Scheduler{
		cfg:      cfg,
		client:   client,
		recorder: recorder,
		log:      slog.Default().With("component", "scheduler", "scheduler", cfg.SchedulerName),
		cache:    NewCache(),
		queue:    NewQueue(),
		jobs:     make(chan func(context.Context), 4*cfg.BindWorkers),
		metrics:  cfg.Metrics,
	}
	s.algo = newAlgorithm(s.cache, cfg.PercentageOfNodesToScore)

	podInf := factory.Core().V1().Pods()
	nodeInf := factory.Core().V1().Nodes()
	nsInf := factory.Core().V1().Namespaces()
	s.pods = podInf.Lister()
	s.nodes = nodeInf.Lister()
	nsLister := nsInf.Lister()
	s.cache.nsLabels = func(name string) labels.Set {
		ns, err := nsLister.Get(name)
		if err != nil || ns == nil {
			return nil
		}
		return labels.Set(ns.Labels)
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.onPod(nil, obj) },
		UpdateFunc: func(old, obj any) { s.onPod(old, obj) },
		DeleteFunc: s.onPodDelete,
	}); err != nil {
		return nil, fmt.Errorf("scheduler: pod handler: %w", err)
	}
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.onNode(nil, obj) },
		UpdateFunc: func(old, obj any) { s.onNode(old, obj) },
		DeleteFunc: s.onNodeDelete,
	}); err != nil {
		return nil, fmt.Errorf("scheduler: node handler: %w", err)
	}
	pvcInf := factory.Core().V1().PersistentVolumeClaims()
	pvInf := factory.Core().V1().PersistentVolumes()
	if err := pvInf.Informer().AddIndexers(cache.Indexers{pvClassIndex: pvClassIndexFunc}); err != nil {
		return nil, fmt.Errorf("scheduler: persistent volume index: %w", err)
	}
	s.classes = storageinformers.NewStorageClassInformer(client, 0, cache.Indexers{})
	s.volumes = newVolumeBinder(pvcInf.Lister(), pvInf.Informer().GetIndexer(), storagelisters.NewStorageClassLister(s.classes.GetIndexer()))
	if _, err := pvcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.onClaim,
		UpdateFunc: func(_, obj any) { s.onClaim(obj) },
		DeleteFunc: s.onClaimDelete,
	}); err != nil {
		return nil, fmt.Errorf("scheduler: persistent volume claim handler: %w", err)
	}
	if _, err := pvInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.onVolume,
		UpdateFunc: func(_, obj any) { s.onVolume(obj) },
		DeleteFunc: s.onVolumeDelete,
	}); err != nil {
		return nil, fmt.Errorf("scheduler: persistent volume handler: %w", err)
	}
	if _, err := s.classes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.queue.MoveAllToActive() },
		UpdateFunc: func(any, any) { s.queue.MoveAllToActive() },
	}); err != nil {
		return nil, fmt.Errorf("scheduler: storage class handler: %w", err)
	}
	svcInf := factory.Core().V1().Services()
	rsInf := factory.Apps().V1().ReplicaSets()
	ssInf := factory.Apps().V1().StatefulSets()
	rcInf := factory.Core().V1().ReplicationControllers()
	s.spread = &spreadSelectors{services: svcInf.Lister(), replicaSets: rsInf.Lister(), statefulSets: ssInf.Lister(),
		replicationControllers: rcInf.Lister()}
	s.synced = []cache.InformerSynced{podInf.Informer().HasSynced, nodeInf.Informer().HasSynced, nsInf.Informer().HasSynced,
		svcInf.Informer().HasSynced, rsInf.Informer().HasSynced, ssInf.Informer().HasSynced, rcInf.Informer().HasSynced,
		pvcInf.Informer().HasSynced, pvInf.Informer().HasSynced}
	return s, nil
}

// Start waits for the informers to sync, then schedules until ctx ends.
// It returns after the decision loop, the queue flusher, every bind
// worker and PreBind, and the StorageClass informer have exited. A
// Scheduler runs once: under leader election, build a new one (and a new
// informer factory) for each term.
func (s *Scheduler) Start(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return fmt.Errorf("scheduler: caches did not sync: %w", ctx.Err())
	}
	var classes sync.WaitGroup
	defer classes.Wait()
	if s.storageClassesServed() {
		classes.Go(func() { s.classes.RunWithContext(ctx) })
		if !cache.WaitForCacheSync(ctx.Done(), s.classes.HasSynced) {
			return fmt.Errorf("scheduler: storage classes did not sync: %w", ctx.Err())
		}
	}
	s.log.Info("scheduler started", "nodes", s.cache.NodeCount())
	s.metrics.serving(s.queue)
	defer s.metrics.serving(nil)
	var workers, loops sync.WaitGroup
	for range s.cfg.BindWorkers {
		workers.Go(func() {
			for job := range s.jobs {
				job(ctx)
			}
		})
	}
	loops.Go(func() {
		for s.scheduleOne(ctx) {
		}
	})
	loops.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.queue.flush()
			}
		}
	})
	<-ctx.Done()
	s.queue.Close()
	loops.Wait()
	close(s.jobs) // only the decision loop sends, and it has exited
	workers.Wait()
	s.preBinds.Wait() // only the decision loop starts them
	return nil
}

// storageClassesServed asks discovery whether the server serves
// storage.k8s.io/v1 storageclasses. When it does not, the class lister
// stays empty: every claim counts as having no class, so unbound claims
// are Immediate ones, as upstream treats a class that does not exist.
func (s *Scheduler) storageClassesServed() bool {
	gv := storagev1.SchemeGroupVersion.String()
	list, err := s.client.Discovery().ServerResourcesForGroupVersion(gv)
	if err == nil {
		for _, r := range list.APIResources {
			if r.Name == "storageclasses" {
				return true
			}
		}
	}
	s.log.Info("storage classes are not served: claims with a class bind as Immediate", "groupVersion", gv, "err", err)
	return false
}

// submit hands API work to the bind workers; it blocks when they are
// saturated, which throttles the loop to what the API server takes.
func (s *Scheduler) submit(ctx context.Context, job func(context.Context)) {
	select {
	case s.jobs <- job:
	case <-ctx.Done():
	}
}

// scheduleOne makes one decision; it returns false once the queue closes.
func (s *Scheduler) scheduleOne(ctx context.Context) bool {
	qp, cycle := s.queue.Pop()
	if qp == nil {
		return false
	}
	p := qp.info
	if !s.responsible(p.pod) {
		s.queue.Done(p.key)
		return true
	}
	if len(p.pod.Spec.TopologySpreadConstraints) == 0 {
		// Per attempt, from the listers, before taking the cache lock: a
		// Service or controller the informers report after the pod was
		// queued still counts, as upstream computes it every cycle.
		p.setDefaultSpread(s.spread.defaultSelector(p.pod))
	}
	if p.claims != nil {
		// Likewise from the informers, before the cache lock: the volume
		// filters' PreFilter.
		p.claims.volumes = s.volumes.podState(p)
	}
	began := time.Now()
	s.cache.mu.Lock()
	if s.cache.isPlacedLocked(p.key) {
		s.cache.mu.Unlock()
		s.queue.Done(p.key)
		return true
	}
	node, fe := s.algo.schedule(p)
	s.metrics.algorithmDone(began)
	if node != nil {
		s.cache.assumeLocked(p, node.name)
		var plan *volumePlan
		if vs := p.volumeState(); vs != nil && len(vs.unbound) > 0 {
			plan = vs.plan(node)
			s.volumes.assume(plan, node.name)
		}
		s.cache.mu.Unlock()
		name := node.name
		if plan != nil {
			s.preBinds.Go(func() { s.bindWithVolumes(ctx, qp, cycle, name, began, plan) })
			return true
		}
		s.submit(ctx, func(ctx context.Context) { s.bind(ctx, qp, cycle, name, began) })
		return true
	}
	var pre *preemption
	victimCount := -1 // no preemption tried
	if fe.numNodes > 0 {
		pre, fe.postFilter = s.algo.preempt(p, fe)
		victimCount = 0
	}
	nominated := ""
	var victims []*v1.Pod
	if pre != nil {
		nominated = pre.node.name
		s.cache.nominateLocked(p, nominated)
		for _, v := range pre.victims {
			victims = append(victims, v.pod)
		}
	}
	s.cache.mu.Unlock()
	if pre != nil {
		victimCount = len(victims)
	}
	s.metrics.unschedulableAttempt(began, victimCount)
	s.queue.Unschedulable(qp, cycle, false)
	msg := fe.Error()
	s.submit(ctx, func(ctx context.Context) { s.recordFailure(ctx, p.pod, msg, nominated, victims) })
	return true
}

// responsible reports whether this scheduler should place pod now.
func (s *Scheduler) responsible(pod *v1.Pod) bool {
	return pod != nil && pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil &&
		schedulerName(pod) == s.cfg.SchedulerName && len(pod.Spec.SchedulingGates) == 0 &&
		pod.Status.Phase != v1.PodSucceeded && pod.Status.Phase != v1.PodFailed
}

func schedulerName(pod *v1.Pod) string {
	if pod.Spec.SchedulerName == "" {
		return DefaultSchedulerName
	}
	return pod.Spec.SchedulerName
}

func terminal(pod *v1.Pod) bool {
	return pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed
}

func (s *Scheduler) onPod(oldObj, obj any) {
	pod, ok := obj.(*v1.Pod)
	if !ok || pod == nil {
		return
	}
	old, _ := oldObj.(*v1.Pod)
	key := pod.Namespace + "/" + pod.Name
	switch {
	case pod.Spec.NodeName != "":
		s.queue.Delete(key)
		if terminal(pod) {
			s.cache.RemovePod(key)
			if old != nil && !terminal(old) {
				s.queue.MoveAllToActive() // its resources are free now
			}
			return
		}
		s.cache.SetPod(pod)
	case s.responsible(pod):
		p := newPodInfo(pod)
		s.cache.Nominate(p, pod.Status.NominatedNodeName)
		if old == nil || podChanged(old, pod) {
			s.queue.Add(p)
		} else {
			s.queue.Refresh(p)
		}
	default:
		s.queue.Delete(key)
		s.cache.RemovePod(key)
	}
}

// podChanged reports an update that can change the decision (spec or
// labels), as opposed to a status-only one.
func podChanged(old, pod *v1.Pod) bool {
	return !maps.Equal(old.Labels, pod.Labels) || !equality.Semantic.DeepEqual(old.Spec, pod.Spec)
}

func (s *Scheduler) onPodDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*v1.Pod)
	if !ok || pod == nil {
		return
	}
	key := pod.Namespace + "/" + pod.Name
	s.queue.Delete(key)
	s.cache.RemovePod(key)
	if pod.Spec.NodeName != "" {
		s.queue.MoveAllToActive()
	} else if len(pod.Spec.Volumes) > 0 {
		s.volumes.notify() // it may wait in PreBind
	}
}

// onClaim and onVolume: a claim or volume added or changed may make pods
// fit (upstream's VolumeBinding and VolumeRestrictions register these
// events), and may be what a PreBind waits for.
func (s *Scheduler) onClaim(obj any) {
	if c, ok := obj.(*v1.PersistentVolumeClaim); ok && c != nil {
		s.volumes.setClaim(c.Namespace+"/"+c.Name, c)
		s.queue.MoveAllToActive()
	}
}

func (s *Scheduler) onClaimDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if c, ok := obj.(*v1.PersistentVolumeClaim); ok && c != nil {
		s.volumes.setClaim(c.Namespace+"/"+c.Name, nil)
	}
}

func (s *Scheduler) onVolume(obj any) {
	if pv, ok := obj.(*v1.PersistentVolume); ok && pv != nil {
		s.volumes.setPV(pv.Name, pv)
		s.queue.MoveAllToActive()
	}
}

func (s *Scheduler) onVolumeDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if pv, ok := obj.(*v1.PersistentVolume); ok && pv != nil {
		s.volumes.setPV(pv.Name, nil)
	}
}

func (s *Scheduler) onNode(oldObj, obj any) {
	node, ok := obj.(*v1.Node)
	if !ok || node == nil {
		return
	}
	s.cache.SetNode(node)
	old, _ := oldObj.(*v1.Node)
	if old == nil || nodeChanged(old, node) {
		s.queue.MoveAllToActive()
	}
}

// nodeChanged reports a change that can make a pending pod fit.
func nodeChanged(old, node *v1.Node) bool {
	return old.Spec.Unschedulable != node.Spec.Unschedulable ||
		!maps.Equal(old.Labels, node.Labels) ||
		!equality.Semantic.DeepEqual(old.Spec.Taints, node.Spec.Taints) ||
		!equality.Semantic.DeepEqual(old.Status.Allocatable, node.Status.Allocatable)
}

func (s *Scheduler) onNodeDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if node, ok := obj.(*v1.Node); ok && node != nil {
		s.cache.RemoveNode(node.Name)
	}
}
