// Package disruption is the PodDisruptionBudget controller: it keeps each
// policy/v1 PDB's status (expectedPods, desiredHealthy, currentHealthy,
// disruptionsAllowed, the DisruptionAllowed condition, observedGeneration)
// in line with the pods its selector matches, and drops disruptedPods
// entries once their pod is terminating or two minutes have passed. The
// API server's eviction reads that status and adds the entries.
//
// computeStatus (compute.go) is the pure decision; this file follows pods'
// controller references through informers (ReplicaSet → Deployment,
// StatefulSet, ReplicationController) for the expected pod count. Unlike
// upstream there is no scale-subresource lookup for other kinds (a pod of
// an unknown controller counts as one pod).
package disruption

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/controller/podset"
	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

const name = "disruption"

// Options tune the controller.
type Options struct {
	// Workers is the number of budgets reconciled at once (default 5).
	Workers int
}

// Controller is the PodDisruptionBudget controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	workers  int
	now      func() time.Time

	pdbs         policylisters.PodDisruptionBudgetLister
	pods         corelisters.PodLister
	replicaSets  appslisters.ReplicaSetLister
	deployments  appslisters.DeploymentLister
	statefulSets appslisters.StatefulSetLister
	rcs          corelisters.ReplicationControllerLister
	synced       []cache.InformerSynced
	queue        *reconcile.Queue
}

// New builds the controller and registers its PodDisruptionBudget, Pod,
// ReplicaSet, Deployment, StatefulSet and ReplicationController informers
// and handlers on factory.
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
	c := &Controller{client: client, recorder: recorder, log: slog.Default().With("controller", name), workers: o.Workers, now: time.Now}
	c.queue = reconcile.New(name, c.sync)

	pdbInf := factory.Policy().V1().PodDisruptionBudgets()
	c.pdbs = pdbInf.Lister()
	if _, err := pdbInf.Informer().AddEventHandler(c.queue.Handler()); err != nil {
		return nil, fmt.Errorf("%s: pdb handler: %w", name, err)
	}
	podInf := factory.Core().V1().Pods()
	c.pods = podInf.Lister()
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.enqueuePodBudgets(podOf(obj)) },
		UpdateFunc: func(old, cur any) {
			o, n := podOf(old), podOf(cur)
			if o == nil || n == nil || !podChanged(o, n) {
				return
			}
			c.enqueuePodBudgets(n)
			if !maps.Equal(o.Labels, n.Labels) {
				c.enqueuePodBudgets(o)
			}
		},
		DeleteFunc: func(obj any) { c.enqueuePodBudgets(podOf(obj)) },
	}); err != nil {
		return nil, fmt.Errorf("%s: pod handler: %w", name, err)
	}
	// A workload's replicas feed expectedPods: requeue the budgets of its
	// namespace when they change.
	scaleHandler := cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueueNamespace,
		UpdateFunc: func(old, cur any) {
			if replicasOf(old) != replicasOf(cur) {
				c.enqueueNamespace(cur)
			}
		},
		DeleteFunc: c.enqueueNamespace,
	}
	rsInf := factory.Apps().V1().ReplicaSets()
	c.replicaSets = rsInf.Lister()
	dInf := factory.Apps().V1().Deployments()
	c.deployments = dInf.Lister()
	ssInf := factory.Apps().V1().StatefulSets()
	c.statefulSets = ssInf.Lister()
	rcInf := factory.Core().V1().ReplicationControllers()
	c.rcs = rcInf.Lister()
	for _, inf := range []cache.SharedIndexInformer{rsInf.Informer(), dInf.Informer(), ssInf.Informer(), rcInf.Informer()} {
		if _, err := inf.AddEventHandler(scaleHandler); err != nil {
			return nil, fmt.Errorf("%s: workload handler: %w", name, err)
		}
	}
	c.synced = []cache.InformerSynced{
		pdbInf.Informer().HasSynced, podInf.Informer().HasSynced,
		rsInf.Informer().HasSynced, dInf.Informer().HasSynced, ssInf.Informer().HasSynced, rcInf.Informer().HasSynced,
	}
	return c, nil
}

// Start waits for the caches to sync, reconciles budgets until ctx ends,
// and returns after its workers have exited.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting", "workers", c.workers)
	return c.queue.Run(ctx, c.workers, c.synced...)
}

// sync recomputes the status of the budget named by key.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, pdbName, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pdb, err := c.pdbs.PodDisruptionBudgets(ns).Get(pdbName)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		c.recorder.Eventf(pdb, corev1.EventTypeWarning, "InvalidSelector", "invalid selector: %v", err)
		return nil
	}
	pods, err := c.pods.Pods(ns).List(sel)
	if err != nil {
		return fmt.Errorf("listing pods of budget %s: %w", key, err)
	}
	status, recheck := computeStatus(pdb, pods, c.scale, c.now())
	if recheck > 0 {
		c.queue.AddAfter(key, recheck)
	}
	if apiequality.Semantic.DeepEqual(pdb.Status, status) {
		return nil
	}
	next := pdb.DeepCopy()
	next.Status = status
	if _, err := c.client.PolicyV1().PodDisruptionBudgets(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating status of budget %s: %w", key, err)
	}
	return nil
}

// scale resolves a pod's controller reference through the informers (a
// scaleFunc).
func (c *Controller) scale(ns string, ref *metav1.OwnerReference) (types.UID, int32, bool) {
	if ref == nil {
		return "", 0, false
	}
	if ref.Kind == "ReplicationController" && ref.APIVersion == corev1.SchemeGroupVersion.String() {
		rc, err := c.rcs.ReplicationControllers(ns).Get(ref.Name)
		if err != nil || rc.UID != ref.UID {
			return "", 0, false
		}
		return rc.UID, replicas(rc.Spec.Replicas), true
	}
	if ref.APIVersion != appsv1.SchemeGroupVersion.String() {
		return "", 0, false
	}
	switch ref.Kind {
	case "ReplicaSet":
		rs, err := c.replicaSets.ReplicaSets(ns).Get(ref.Name)
		if err != nil || rs.UID != ref.UID {
			return "", 0, false
		}
		if dref := metav1.GetControllerOf(rs); dref != nil && dref.Kind == "Deployment" && dref.APIVersion == ref.APIVersion {
			d, err := c.deployments.Deployments(ns).Get(dref.Name)
			if err == nil && d.UID == dref.UID {
				return d.UID, replicas(d.Spec.Replicas), true
			}
		}
		return rs.UID, replicas(rs.Spec.Replicas), true
	case "StatefulSet":
		ss, err := c.statefulSets.StatefulSets(ns).Get(ref.Name)
		if err != nil || ss.UID != ref.UID {
			return "", 0, false
		}
		return ss.UID, replicas(ss.Spec.Replicas), true
	}
	return "", 0, false
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func replicasOf(obj any) int32 {
	switch o := obj.(type) {
	case *appsv1.ReplicaSet:
		return replicas(o.Spec.Replicas)
	case *appsv1.Deployment:
		return replicas(o.Spec.Replicas)
	case *appsv1.StatefulSet:
		return replicas(o.Spec.Replicas)
	case *corev1.ReplicationController:
		return replicas(o.Spec.Replicas)
	}
	return -1
}

func podOf(obj any) *corev1.Pod {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, _ := obj.(*corev1.Pod)
	return p
}

// podChanged reports whether a pod update can change a budget's status.
func podChanged(o, n *corev1.Pod) bool {
	return !maps.Equal(o.Labels, n.Labels) ||
		podset.IsReady(o) != podset.IsReady(n) ||
		(o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) ||
		!apiequality.Semantic.DeepEqual(metav1.GetControllerOf(o), metav1.GetControllerOf(n))
}

// enqueuePodBudgets queues the budgets in the pod's namespace that select it.
func (c *Controller) enqueuePodBudgets(p *corev1.Pod) {
	if p == nil {
		return
	}
	pdbs, err := c.pdbs.PodDisruptionBudgets(p.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	set := labels.Set(p.Labels)
	for _, pdb := range pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err == nil && sel.Matches(set) {
			c.queue.Add(pdb.Namespace + "/" + pdb.Name)
		}
	}
}

// enqueueNamespace queues every budget in obj's namespace.
func (c *Controller) enqueueNamespace(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	pdbs, err := c.pdbs.PodDisruptionBudgets(m.GetNamespace()).List(labels.Everything())
	if err != nil {
		return
	}
	for _, pdb := range pdbs {
		c.queue.Add(pdb.Namespace + "/" + pdb.Name)
	}
}
