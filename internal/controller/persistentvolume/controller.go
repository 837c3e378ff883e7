package persistentvolume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	storagehelpers "k8s.io/component-helpers/storage/volume"

	"github.com/skiff-io/skiff/internal/controller/pvprotection"
	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

// Name is the controller's name, as in kube-controller-manager's
// --controllers.
const Name = "persistentvolume-binder"

// EventComponent is the source upstream's binder reports its events as.
const EventComponent = "persistentvolume-controller"

// DefaultSyncPeriod is how often every claim and volume is looked at again
// (upstream's --pvclaimbinder-sync-period).
const DefaultSyncPeriod = 15 * time.Second

// Options tune the controller.
type Options struct {
	// SyncPeriod is how often every claim and volume is synced again, as
	// the safety net under the informer events (default
	// DefaultSyncPeriod).
	SyncPeriod time.Duration
}

// Controller is the PersistentVolume binder.
type Controller struct {
	client     kubernetes.Interface
	recorder   record.EventRecorder
	log        *slog.Logger
	syncPeriod time.Duration

	volumeLister corelisters.PersistentVolumeLister
	claimLister  corelisters.PersistentVolumeClaimLister
	classLister  storagelisters.StorageClassLister
	pods         cache.Indexer
	synced       []cache.InformerSynced

	volumes *written[*corev1.PersistentVolume]
	claims  *written[*corev1.PersistentVolumeClaim]

	claimQueue  *reconcile.Queue
	volumeQueue *reconcile.Queue
}

// New builds the binder and registers its informers (volumes, claims,
// storage.k8s.io/v1 StorageClasses, and pods with the
// pvprotection.IndexPodsByClaim index) and handlers on factory. The caller
// starts the factory; Start waits for it to sync. Events go to recorder,
// which should report as EventComponent.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts ...Options) (*Controller, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", Name)
	}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.SyncPeriod <= 0 {
		o.SyncPeriod = DefaultSyncPeriod
	}
	if recorder == nil {
		recorder = &record.FakeRecorder{}
	}
	c := &Controller{
		client:     client,
		recorder:   recorder,
		log:        slog.Default().With("controller", Name),
		syncPeriod: o.SyncPeriod,
		volumes:    newWritten[*corev1.PersistentVolume](),
		claims:     newWritten[*corev1.PersistentVolumeClaim](),
	}
	// Upstream's queue names, for the workqueue metrics.
	c.claimQueue = reconcile.New("claims", c.syncClaim)
	c.volumeQueue = reconcile.New("volumes", c.syncVolume)

	volumeInf := factory.Core().V1().PersistentVolumes()
	c.volumeLister = volumeInf.Lister()
	if _, err := volumeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.volumeQueue.Enqueue,
		UpdateFunc: func(old, obj any) {
			c.volumeQueue.Enqueue(obj)
			c.volumeBecameAvailable(old, obj)
		},
		DeleteFunc: func(obj any) {
			c.volumeQueue.Enqueue(obj)
			// Its claim becomes Lost now rather than at the next resync.
			if pv, ok := unwrap(obj).(*corev1.PersistentVolume); ok && pv.Spec.ClaimRef != nil {
				c.claimQueue.Add(pv.Spec.ClaimRef.Namespace + "/" + pv.Spec.ClaimRef.Name)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("%s: volume handler: %w", Name, err)
	}

	claimInf := factory.Core().V1().PersistentVolumeClaims()
	c.claimLister = claimInf.Lister()
	if _, err := claimInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.claimQueue.Enqueue,
		UpdateFunc: func(_, obj any) { c.claimQueue.Enqueue(obj) },
		DeleteFunc: func(obj any) {
			c.claimQueue.Enqueue(obj)
			// Its volume is Released now rather than at the next resync.
			if pvc, ok := unwrap(obj).(*corev1.PersistentVolumeClaim); ok && pvc.Spec.VolumeName != "" {
				c.volumeQueue.Add(pvc.Spec.VolumeName)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("%s: claim handler: %w", Name, err)
	}

	classInf := factory.Storage().V1().StorageClasses()
	c.classLister = classInf.Lister()
	if _, err := classInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.classChanged,
		UpdateFunc: func(_, obj any) { c.classChanged(obj) },
	}); err != nil {
		return nil, fmt.Errorf("%s: class handler: %w", Name, err)
	}

	podInf := factory.Core().V1().Pods().Informer()
	if err := pvprotection.AddPodClaimIndex(podInf); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	c.pods = podInf.GetIndexer()

	c.synced = []cache.InformerSynced{
		volumeInf.Informer().HasSynced, claimInf.Informer().HasSynced,
		classInf.Informer().HasSynced, podInf.HasSynced,
	}
	return c, nil
}

// Start waits for the caches to sync, then runs one claim worker, one
// volume worker and the periodic resync until ctx ends, and returns after
// all three have exited. Ending ctx before the caches sync is a stop, not
// an error.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting", "syncPeriod", c.syncPeriod)
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return nil
	}
	var wg sync.WaitGroup
	var claimErr, volumeErr error
	wg.Go(func() { claimErr = c.claimQueue.Run(ctx, 1, c.synced...) })
	wg.Go(func() { volumeErr = c.volumeQueue.Run(ctx, 1, c.synced...) })
	wg.Go(func() { c.resync(ctx) })
	wg.Wait()
	return errors.Join(claimErr, volumeErr)
}

// resync queues every claim and volume each syncPeriod until ctx ends. It
// is what retries the conditions no event announces: a pre-bound claim's
// volume appearing, a provisioner still at work, a deleter that failed.
func (c *Controller) resync(ctx context.Context) {
	t := time.NewTicker(c.syncPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		claims, err := c.claimLister.List(labels.Everything())
		if err != nil {
			c.log.Info("resync: listing claims", "err", err)
			continue
		}
		for _, pvc := range claims {
			c.claimQueue.Enqueue(pvc)
		}
		volumes, err := c.volumeLister.List(labels.Everything())
		if err != nil {
			c.log.Info("resync: listing volumes", "err", err)
			continue
		}
		for _, pv := range volumes {
			c.volumeQueue.Enqueue(pv)
		}
	}
}

// classChanged queues the claims a new or changed StorageClass may
// concern: the unbound claims of that class and, if it is a default class,
// the unbound claims without one.
func (c *Controller) classChanged(obj any) {
	class, ok := obj.(*storagev1.StorageClass)
	if !ok {
		return
	}
	claims, err := c.claimLister.List(labels.Everything())
	if err != nil {
		return
	}
	isDefault := isDefaultClass(class)
	for _, pvc := range claims {
		if metav1.HasAnnotation(pvc.ObjectMeta, storagehelpers.AnnBindCompleted) {
			continue
		}
		if storagehelpers.GetPersistentVolumeClaimClass(pvc) == class.Name ||
			(isDefault && !storagehelpers.PersistentVolumeClaimHasClass(pvc)) {
			c.claimQueue.Enqueue(pvc)
		}
	}
}

func unwrap(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

// volume returns the named volume: the informer's copy, or the binder's
// own last write when that is newer.
func (c *Controller) volume(name string) (*corev1.PersistentVolume, error) {
	pv, err := c.volumeLister.Get(name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			c.volumes.forget(name)
		}
		return nil, err
	}
	return c.volumes.newer(name, pv), nil
}

// claim returns the named claim, as volume does volumes.
func (c *Controller) claim(namespace, name string) (*corev1.PersistentVolumeClaim, error) {
	pvc, err := c.claimLister.PersistentVolumeClaims(namespace).Get(name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			c.claims.forget(namespace + "/" + name)
		}
		return nil, err
	}
	return c.claims.newer(namespace+"/"+name, pvc), nil
}

// allVolumes lists every volume, each as volume returns it.
func (c *Controller) allVolumes() ([]*corev1.PersistentVolume, error) {
	pvs, err := c.volumeLister.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing volumes: %w", err)
	}
	for i, pv := range pvs {
		pvs[i] = c.volumes.newer(pv.Name, pv)
	}
	return pvs, nil
}

// The writes. Each sends the object with the resourceVersion it was read
// at, so a write decided on stale data fails with 409, and remembers what
// the server returned.

func (c *Controller) updateVolume(ctx context.Context, pv *corev1.PersistentVolume) (*corev1.PersistentVolume, error) {
	out, err := c.client.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("volume %s: update: %w", pv.Name, err)
	}
	c.volumes.remember(out.Name, out)
	return out, nil
}

func (c *Controller) updateVolumeStatus(ctx context.Context, pv *corev1.PersistentVolume) (*corev1.PersistentVolume, error) {
	out, err := c.client.CoreV1().PersistentVolumes().UpdateStatus(ctx, pv, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("volume %s: update status: %w", pv.Name, err)
	}
	c.volumes.remember(out.Name, out)
	return out, nil
}

func (c *Controller) updateClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim) (*corev1.PersistentVolumeClaim, error) {
	out, err := c.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, pvc, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("claim %s/%s: update: %w", pvc.Namespace, pvc.Name, err)
	}
	c.claims.remember(out.Namespace+"/"+out.Name, out)
	return out, nil
}

func (c *Controller) updateClaimStatus(ctx context.Context, pvc *corev1.PersistentVolumeClaim) (*corev1.PersistentVolumeClaim, error) {
	out, err := c.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, pvc, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("claim %s/%s: update status: %w", pvc.Namespace, pvc.Name, err)
	}
	c.claims.remember(out.Namespace+"/"+out.Name, out)
	return out, nil
}

// volumeBecameAvailable looks again at the Pending claims of a volume's
// class when it becomes Available (a volume created beside its claim is
// Pending until its first sync), so that they bind within a second rather
// than at the next resync. The second lets volumes created together all
// become Available first, so that a claim still gets the smallest that
// fits.
func (c *Controller) volumeBecameAvailable(old, obj any) {
	was, ok1 := old.(*corev1.PersistentVolume)
	pv, ok2 := obj.(*corev1.PersistentVolume)
	if !ok1 || !ok2 || pv.Status.Phase != corev1.VolumeAvailable || was.Status.Phase == corev1.VolumeAvailable {
		return
	}
	claims, err := c.claimLister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, claim := range claims {
		if claim.Spec.VolumeName == "" && claim.Status.Phase != corev1.ClaimBound && storagehelpers.GetPersistentVolumeClaimClass(claim) == pv.Spec.StorageClassName {
			c.claimQueue.AddAfter(claim.Namespace+"/"+claim.Name, availableSettle)
		}
	}
}

// availableSettle is how long a claim waits after a volume of its class
// became Available before it is matched again.
const availableSettle = time.Second
