package pvprotection

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-helpers/storage/ephemeral"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

// ClaimControllerName is the pvc-protection controller's name, as in
// kube-controller-manager's --controllers.
const ClaimControllerName = "pvc-protection"

// liveListTTL is how long a live pod list of a namespace answers for the
// claims of that namespace that are deleted together.
const liveListTTL = time.Second

// Options tune a protection controller.
type Options struct {
	// Workers is the number of objects handled at once (default 1, as
	// upstream).
	Workers int
}

func (o Options) workers() int { return max(o.Workers, 1) }

// ClaimProtection is the pvc-protection controller.
type ClaimProtection struct {
	client  kubernetes.Interface
	log     *slog.Logger
	workers int

	claims corelisters.PersistentVolumeClaimLister
	pods   cache.Indexer
	synced []cache.InformerSynced
	queue  *reconcile.Queue

	mu   sync.Mutex
	live map[string]liveList // namespace → recent live pod list
}

type liveList struct {
	at   time.Time
	pods []corev1.Pod
}

// NewClaimProtection builds the pvc-protection controller and registers its
// claim and pod informers (with IndexPodsByClaim) and handlers on factory.
func NewClaimProtection(client kubernetes.Interface, factory informers.SharedInformerFactory, opts ...Options) (*ClaimProtection, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", ClaimControllerName)
	}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	c := &ClaimProtection{
		client:  client,
		log:     slog.Default().With("controller", ClaimControllerName),
		workers: o.workers(),
		live:    map[string]liveList{},
	}
	c.queue = reconcile.New("pvcprotection", c.sync)

	claimInf := factory.Core().V1().PersistentVolumeClaims()
	c.claims = claimInf.Lister()
	enqueueClaim := func(obj any) {
		if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok &&
			(needsFinalizer(pvc, ClaimFinalizer) || releasable(pvc, ClaimFinalizer)) {
			c.queue.Enqueue(pvc)
		}
	}
	if _, err := claimInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueClaim,
		UpdateFunc: func(_, obj any) { enqueueClaim(obj) },
	}); err != nil {
		return nil, fmt.Errorf("%s: claim handler: %w", ClaimControllerName, err)
	}

	podInf := factory.Core().V1().Pods().Informer()
	if err := AddPodClaimIndex(podInf); err != nil {
		return nil, fmt.Errorf("%s: %w", ClaimControllerName, err)
	}
	c.pods = podInf.GetIndexer()
	if _, err := podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.podChanged(nil, obj, false) },
		UpdateFunc: func(old, obj any) {
			c.podChanged(old, obj, false)
		},
		DeleteFunc: func(obj any) { c.podChanged(nil, obj, true) },
	}); err != nil {
		return nil, fmt.Errorf("%s: pod handler: %w", ClaimControllerName, err)
	}
	c.synced = []cache.InformerSynced{claimInf.Informer().HasSynced, podInf.HasSynced}
	return c, nil
}

// Start waits for the caches to sync, handles claims until ctx ends, and
// returns after the workers have exited.
func (c *ClaimProtection) Start(ctx context.Context) error {
	c.log.Info("starting", "workers", c.workers)
	return c.queue.Run(ctx, c.workers, c.synced...)
}

// podChanged queues the claims of a pod that may have stopped holding
// them: a deleted, terminated or unscheduled pod. An update whose old
// object has another UID masks a delete and a create under one name: the
// old pod's claims are queued as deleted.
func (c *ClaimProtection) podChanged(old, obj any, deleted bool) {
	pod := asPod(obj)
	if pod == nil {
		return
	}
	c.queuePodClaims(pod, deleted)
	if oldPod := asPod(old); oldPod != nil && oldPod.UID != pod.UID {
		c.queuePodClaims(oldPod, true)
	}
}

func (c *ClaimProtection) queuePodClaims(pod *corev1.Pod, deleted bool) {
	if !deleted && !PodTerminated(pod) && pod.Spec.NodeName != "" {
		// A running pod cannot help any claim lose its finalizer.
		return
	}
	for _, key := range claimKeys(pod) {
		c.queue.Add(key)
	}
}

func asPod(obj any) *corev1.Pod {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, _ := obj.(*corev1.Pod)
	return pod
}

// sync adds the finalizer to a live claim that lacks it, and removes it
// from a claim being deleted that no pod uses any more.
func (c *ClaimProtection) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pvc, err := c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("claim %s: %w", key, err)
	}
	if releasable(pvc, ClaimFinalizer) {
		used, err := c.inUse(ctx, pvc)
		if err != nil {
			return fmt.Errorf("claim %s: %w", key, err)
		}
		if !used {
			return c.setFinalizers(ctx, pvc, without(pvc.Finalizers, ClaimFinalizer))
		}
		c.log.Debug("keeping claim in use", "claim", key)
		return nil
	}
	if needsFinalizer(pvc, ClaimFinalizer) {
		// The admission plugin adds it on create upstream; this covers
		// claims made before it, or without it.
		return c.setFinalizers(ctx, pvc, append(append([]string(nil), pvc.Finalizers...), ClaimFinalizer))
	}
	return nil
}

func (c *ClaimProtection) setFinalizers(ctx context.Context, pvc *corev1.PersistentVolumeClaim, finalizers []string) error {
	clone := pvc.DeepCopy()
	clone.Finalizers = finalizers
	if _, err := c.client.CoreV1().PersistentVolumeClaims(clone.Namespace).Update(ctx, clone, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("claim %s/%s: finalizers: %w", pvc.Namespace, pvc.Name, err)
	}
	c.log.Debug("claim finalizers updated", "claim", pvc.Namespace+"/"+pvc.Name, "finalizers", finalizers)
	return nil
}

// inUse reports whether a scheduled pod uses pvc: first from the pod
// cache, then, since a pod may exist that the cache has not seen yet, from
// a live list of the namespace.
func (c *ClaimProtection) inUse(ctx context.Context, pvc *corev1.PersistentVolumeClaim) (bool, error) {
	pods, err := PodsUsingClaim(c.pods, pvc.Namespace, pvc.Name)
	if err != nil {
		return false, err
	}
	for _, p := range pods {
		if podUsesClaim(p, pvc) {
			return true, nil
		}
	}
	// A shared recent list answers "unused"; a "used" from it is checked
	// against a fresh one, since the pod may have gone since, and no
	// event would come to correct a claim wrongly kept.
	for _, fresh := range []bool{false, true} {
		live, shared, err := c.livePods(ctx, pvc.Namespace, fresh)
		if err != nil {
			return false, err
		}
		used := slices.ContainsFunc(live, func(p corev1.Pod) bool { return podUsesClaim(&p, pvc) })
		if !used || !shared {
			return used, nil
		}
	}
	return true, nil
}

// livePods lists the pods of namespace from the API server. Unless fresh
// is set, it reuses a list made less than liveListTTL ago (and says so):
// a burst of claim deletions in one namespace costs one list, as
// upstream's lazy per-namespace list.
func (c *ClaimProtection) livePods(ctx context.Context, namespace string, fresh bool) (pods []corev1.Pod, shared bool, err error) {
	c.mu.Lock()
	if l, ok := c.live[namespace]; ok && !fresh && time.Since(l.at) < liveListTTL {
		c.mu.Unlock()
		return l.pods, true, nil
	}
	c.mu.Unlock()
	list, err := c.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, false, fmt.Errorf("live list of pods in %s: %w", namespace, err)
	}
	now := time.Now()
	c.mu.Lock()
	for ns, l := range c.live {
		if now.Sub(l.at) >= liveListTTL {
			delete(c.live, ns)
		}
	}
	c.live[namespace] = liveList{at: now, pods: list.Items}
	c.mu.Unlock()
	return list.Items, false, nil
}

// podUsesClaim reports whether pod holds pvc: only a scheduled pod does
// (the kubelet will not start a pod whose claim is being deleted), through
// a persistentVolumeClaim volume whatever its phase, or through a generic
// ephemeral volume whose claim it owns until it is shut down.
func podUsesClaim(pod *corev1.Pod, pvc *corev1.PersistentVolumeClaim) bool {
	if pod.Spec.NodeName == "" || pod.Namespace != pvc.Namespace {
		return false
	}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc.Name {
			return true
		}
		if v.Ephemeral != nil && !podShutDown(pod) && ephemeral.VolumeClaimName(pod, v) == pvc.Name &&
			ephemeral.VolumeIsForPod(pod, pvc) == nil {
			return true
		}
	}
	return false
}

// podShutDown reports whether the kubelet is done with pod or it was
// force-deleted: deleted with a grace period of zero.
func podShutDown(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp != nil && pod.DeletionGracePeriodSeconds != nil && *pod.DeletionGracePeriodSeconds == 0
}

// PodTerminated reports whether pod has finished for good: it Succeeded
// or Failed, or it is being deleted and none of its containers runs
// (upstream's IsPodTerminated).
func PodTerminated(pod *corev1.Pod) bool {
	if pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
		return true
	}
	return pod.DeletionTimestamp != nil && notRunning(pod.Status.InitContainerStatuses) &&
		notRunning(pod.Status.ContainerStatuses) && notRunning(pod.Status.EphemeralContainerStatuses)
}

func notRunning(statuses []corev1.ContainerStatus) bool {
	for _, s := range statuses {
		if s.State.Terminated == nil && s.State.Waiting == nil {
			return false
		}
	}
	return true
}
