package localpath

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

// pvProtectionFinalizer is held while a claim is bound to the volume: its
// data stays until then, even when the volume is deleted.
const pvProtectionFinalizer = "kubernetes.io/pv-protection"

// Cleaner is the node half of local-path: when one of the node's volumes
// is deleted, it removes the volume's directory (reclaim policy Delete;
// Retain keeps the data) and then its Finalizer. It lists only the
// volumes labelled with its node, which is all the Node authorizer lets a
// node list.
type Cleaner struct {
	client  kubernetes.Interface
	node    string
	dir     string
	log     *slog.Logger
	factory informers.SharedInformerFactory
	volumes corelisters.PersistentVolumeLister
	synced  cache.InformerSynced
	queue   *reconcile.Queue
	// handlerErr is the informer's refusal of the handler, reported by
	// Start.
	handlerErr error
}

// NewCleaner builds the cleaner of node, whose storage directory is dir,
// acting with client (the node's credentials).
func NewCleaner(client kubernetes.Interface, node, dir string, log *slog.Logger) *Cleaner {
	if log == nil {
		log = slog.Default()
	}
	c := &Cleaner{client: client, node: node, dir: dir, log: log.With("component", "local-path")}
	c.queue = reconcile.New("local-path-cleaner", c.sync)
	selector := labels.Set{NodeLabel: node}.String()
	c.factory = informers.NewSharedInformerFactoryWithOptions(client, 10*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	inf := c.factory.Core().V1().PersistentVolumes()
	c.volumes = inf.Lister()
	enqueue := func(obj any) {
		if pv, ok := obj.(*corev1.PersistentVolume); ok && pv.DeletionTimestamp != nil && slices.Contains(pv.Finalizers, Finalizer) {
			c.queue.Enqueue(pv)
		}
	}
	c.handlerErr = func() error {
		_, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue,
			UpdateFunc: func(_, obj any) { enqueue(obj) },
		})
		return err
	}()
	c.synced = inf.Informer().HasSynced
	return c
}

// Start creates the storage directory and cleans up deleted volumes until
// ctx ends.
func (c *Cleaner) Start(ctx context.Context) error {
	if c.handlerErr != nil {
		return fmt.Errorf("local-path cleaner: %w", c.handlerErr)
	}
	if err := os.MkdirAll(c.dir, 0o711); err != nil {
		return fmt.Errorf("local-path storage directory: %w", err)
	}
	c.factory.StartWithContext(ctx)
	defer c.factory.Shutdown()
	return c.queue.Run(ctx, 1, c.synced)
}

func (c *Cleaner) sync(ctx context.Context, name string) error {
	pv, err := c.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || pv.DeletionTimestamp == nil || !slices.Contains(pv.Finalizers, Finalizer) {
		return err
	}
	if slices.Contains(pv.Finalizers, pvProtectionFinalizer) {
		return nil // still bound: the update that drops it comes back here
	}
	switch {
	case !Owns(pv, c.node, c.dir):
		// Labelled for this node but not at the path it gives its
		// volumes: nothing of it is touched on disk.
		c.log.Warn("volume is not at this node's local-path directory: leaving its data", "volume", pv.Name, "dir", c.dir)
	case pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete:
		if err := os.RemoveAll(pv.Spec.Local.Path); err != nil {
			return fmt.Errorf("removing the directory of volume %s: %w", pv.Name, err)
		}
		c.log.Info("volume directory removed", "volume", pv.Name, "path", pv.Spec.Local.Path)
	default:
		c.log.Info("volume deleted, its data kept", "volume", pv.Name, "reclaimPolicy", pv.Spec.PersistentVolumeReclaimPolicy, "path", pv.Spec.Local.Path)
	}
	clone := pv.DeepCopy()
	clone.Finalizers = slices.DeleteFunc(clone.Finalizers, func(f string) bool { return f == Finalizer })
	_, err = c.client.CoreV1().PersistentVolumes().Update(ctx, clone, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
