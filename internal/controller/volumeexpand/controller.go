package volumeexpand

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

// Name is the controller's name, as in kube-controller-manager's
// --controllers.
const Name = "persistentvolume-expander"

// EventComponent is the source the controller's events report as:
// upstream's expand controller's. Upstream, Resizing and
// VolumeResizeSuccessful come from "external-resizer <driver>"; here one
// controller does the work of both.
const EventComponent = "volume_expand"

// Event reasons, external-resizer's (pkg/util).
const (
	reasonResizing      = "Resizing"
	reasonResizeSuccess = "VolumeResizeSuccessful"
	reasonResizeFailed  = "VolumeResizeFailed"
)

// provisionedBy names the provisioner that made a volume.
const provisionedBy = "pv.kubernetes.io/provisioned-by"

// Options tune the controller.
type Options struct {
	// Provisioners are the provisioners whose volumes the controller
	// expands: their expansion is the API writes alone. At least one is
	// required.
	Provisioners []string
	// Workers is the number of claims handled at once (default 1).
	Workers int
}

// Controller expands the volumes of bound claims that ask for more
// storage.
type Controller struct {
	client       kubernetes.Interface
	recorder     record.EventRecorder
	log          *slog.Logger
	workers      int
	provisioners []string

	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	synced  []cache.InformerSynced
	queue   *reconcile.Queue
}

// New builds the controller and registers its informers (claims and
// volumes) and handlers on factory. The caller starts the factory; Start
// waits for it to sync. Events go to recorder, which should report as
// EventComponent. opts must name the provisioners to serve.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts ...Options) (*Controller, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", Name)
	}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if len(o.Provisioners) == 0 {
		return nil, fmt.Errorf("%s: at least one provisioner is required", Name)
	}
	if recorder == nil {
		recorder = &record.FakeRecorder{}
	}
	c := &Controller{
		client:       client,
		recorder:     recorder,
		log:          slog.Default().With("controller", Name),
		workers:      max(o.Workers, 1),
		provisioners: slices.Clone(o.Provisioners),
	}
	// Upstream's queue name, for the workqueue metrics.
	c.queue = reconcile.New("volume_expand", c.sync)

	claimInf := factory.Core().V1().PersistentVolumeClaims()
	c.claims = claimInf.Lister()
	enqueueClaim := func(obj any) {
		if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok && wantsMore(pvc) {
			c.queue.Enqueue(pvc)
		}
	}
	if _, err := claimInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueClaim,
		UpdateFunc: func(_, obj any) { enqueueClaim(obj) },
	}); err != nil {
		return nil, fmt.Errorf("%s: claim handler: %w", Name, err)
	}

	// A volume the cache had not seen when its claim asked for more
	// brings the claim back when it arrives.
	volumeInf := factory.Core().V1().PersistentVolumes()
	c.volumes = volumeInf.Lister()
	enqueueVolume := func(obj any) {
		if pv, ok := obj.(*corev1.PersistentVolume); ok && c.ours(pv) && pv.Spec.ClaimRef != nil {
			c.queue.Add(pv.Spec.ClaimRef.Namespace + "/" + pv.Spec.ClaimRef.Name)
		}
	}
	if _, err := volumeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueVolume,
		UpdateFunc: func(_, obj any) { enqueueVolume(obj) },
	}); err != nil {
		return nil, fmt.Errorf("%s: volume handler: %w", Name, err)
	}
	c.synced = []cache.InformerSynced{claimInf.Informer().HasSynced, volumeInf.Informer().HasSynced}
	return c, nil
}

// Start waits for the caches to sync, expands volumes until ctx ends, and
// returns after the workers have exited.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting", "workers", c.workers, "provisioners", c.provisioners)
	return c.queue.Run(ctx, c.workers, c.synced...)
}

// ours reports whether one of the controller's provisioners made pv.
func (c *Controller) ours(pv *corev1.PersistentVolume) bool {
	p, ok := pv.Annotations[provisionedBy]
	return ok && slices.Contains(c.provisioners, p)
}

// sync expands the volume of the claim named key if it asks for more: the
// caches filter, live reads decide.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	cached, err := c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("claim %s: %w", key, err)
	}
	if !wantsMore(cached) {
		return nil
	}
	cachedPV, err := c.volumes.Get(cached.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		// Its add event will queue the claim again.
		return nil
	}
	if err != nil {
		return fmt.Errorf("claim %s: volume %s: %w", key, cached.Spec.VolumeName, err)
	}
	if !c.ours(cachedPV) {
		return nil
	}

	pvc, err := c.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("claim %s: %w", key, err)
	}
	if !wantsMore(pvc) {
		return nil
	}
	pv, err := c.client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("claim %s: volume %s: %w", key, pvc.Spec.VolumeName, err)
	}
	if !c.ours(pv) || !boundTo(pv, pvc) {
		c.log.Debug("volume not ours or not bound to the claim", "claim", key, "volume", pv.Name)
		return nil
	}
	size, ok := target(pvc, pv)
	if !ok {
		return nil
	}
	return c.expand(ctx, pvc, pv, size)
}

// expand takes pvc and pv through the protocol's three steps to size.
func (c *Controller) expand(ctx context.Context, pvc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume, size resource.Quantity) error {
	key := pvc.Namespace + "/" + pvc.Name
	if marked := inProgress(pvc, size, metav1.Now()); marked != nil {
		out, err := c.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, marked, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("marking pvc %q as resizing failed: %w", key, err)
		}
		pvc = out
	}
	c.recorder.Event(pvc, corev1.EventTypeNormal, reasonResizing, fmt.Sprintf("External resizer is resizing volume %s", pv.Name))

	capacity := pv.Spec.Capacity[corev1.ResourceStorage]
	if capacity.Cmp(size) < 0 {
		grown := pv.DeepCopy()
		if grown.Spec.Capacity == nil {
			grown.Spec.Capacity = corev1.ResourceList{}
		}
		grown.Spec.Capacity[corev1.ResourceStorage] = size
		if _, err := c.client.CoreV1().PersistentVolumes().Update(ctx, grown, metav1.UpdateOptions{}); err != nil {
			return c.failed(pvc, fmt.Errorf("error updating pv %q by resizer: updating capacity of PV %q to %s failed: %w", pv.Name, pv.Name, size.String(), err))
		}
		capacity = size
		c.log.Debug("volume capacity updated", "volume", pv.Name, "capacity", size.String())
	}

	if _, err := c.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, finished(pvc, capacity), metav1.UpdateOptions{}); err != nil {
		return c.failed(pvc, fmt.Errorf("mark PVC %q as resize finished failed: %w", key, err))
	}
	c.log.Info("volume expanded", "claim", key, "volume", pv.Name, "capacity", capacity.String())
	c.recorder.Event(pvc, corev1.EventTypeNormal, reasonResizeSuccess, "Resize volume succeeded")
	return nil
}

// failed records err on pvc as upstream does, unless it is a conflict:
// another writer won, and the retry that follows is routine.
func (c *Controller) failed(pvc *corev1.PersistentVolumeClaim, err error) error {
	if !apierrors.IsConflict(err) {
		c.recorder.Event(pvc, corev1.EventTypeWarning, reasonResizeFailed, err.Error())
	}
	return err
}
