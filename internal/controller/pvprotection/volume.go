package pvprotection

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

// VolumeControllerName is the pv-protection controller's name, as in
// kube-controller-manager's --controllers.
const VolumeControllerName = "pv-protection"

// VolumeProtection is the pv-protection controller.
type VolumeProtection struct {
	client  kubernetes.Interface
	log     *slog.Logger
	workers int

	volumes corelisters.PersistentVolumeLister
	synced  cache.InformerSynced
	queue   *reconcile.Queue
}

// NewVolumeProtection builds the pv-protection controller and registers its
// volume informer handler on factory.
func NewVolumeProtection(client kubernetes.Interface, factory informers.SharedInformerFactory, opts ...Options) (*VolumeProtection, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", VolumeControllerName)
	}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	c := &VolumeProtection{
		client:  client,
		log:     slog.Default().With("controller", VolumeControllerName),
		workers: o.workers(),
	}
	c.queue = reconcile.New("pvprotection", c.sync)
	inf := factory.Core().V1().PersistentVolumes()
	c.volumes = inf.Lister()
	c.synced = inf.Informer().HasSynced
	enqueue := func(obj any) {
		if pv, ok := obj.(*corev1.PersistentVolume); ok &&
			(needsFinalizer(pv, VolumeFinalizer) || releasable(pv, VolumeFinalizer)) {
			c.queue.Enqueue(pv)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return nil, fmt.Errorf("%s: volume handler: %w", VolumeControllerName, err)
	}
	return c, nil
}

// Start waits for the volume cache to sync, handles volumes until ctx
// ends, and returns after the workers have exited.
func (c *VolumeProtection) Start(ctx context.Context) error {
	c.log.Info("starting", "workers", c.workers)
	return c.queue.Run(ctx, c.workers, c.synced)
}

// sync adds the finalizer to a live volume that lacks it, and removes it
// from a volume being deleted that is not Bound. Bound is the binder's
// word (status.phase): a volume Released by its claim's deletion, or never
// bound, may go.
func (c *VolumeProtection) sync(ctx context.Context, name string) error {
	pv, err := c.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	if releasable(pv, VolumeFinalizer) {
		if pv.Status.Phase == corev1.VolumeBound {
			c.log.Debug("keeping bound volume", "volume", name)
			return nil
		}
		return c.setFinalizers(ctx, pv, without(pv.Finalizers, VolumeFinalizer))
	}
	if needsFinalizer(pv, VolumeFinalizer) {
		return c.setFinalizers(ctx, pv, append(append([]string(nil), pv.Finalizers...), VolumeFinalizer))
	}
	return nil
}

func (c *VolumeProtection) setFinalizers(ctx context.Context, pv *corev1.PersistentVolume, finalizers []string) error {
	clone := pv.DeepCopy()
	clone.Finalizers = finalizers
	if _, err := c.client.CoreV1().PersistentVolumes().Update(ctx, clone, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("volume %s: finalizers: %w", pv.Name, err)
	}
	c.log.Debug("volume finalizers updated", "volume", pv.Name, "finalizers", finalizers)
	return nil
}
