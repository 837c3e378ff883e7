package localpath

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	storagehelpers "k8s.io/component-helpers/storage/volume"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

// Name is the provisioner controller's name in --controllers.
const Name = "local-path-provisioner"

// EventComponent is the source of the provisioner's events.
const EventComponent = Provisioner + "_provisioner"

// Upstream's external provisioner event reasons.
const (
	reasonProvisioning          = "Provisioning"
	reasonProvisioningSucceeded = "ProvisioningSucceeded"
	reasonProvisioningFailed    = "ProvisioningFailed"
	reasonVolumeFailedDelete    = "VolumeFailedDelete"
)

// Controller is the control-plane half of local-path: it creates the
// volumes of claims handed to Provisioner on the node the scheduler
// selected, and deletes released volumes whose reclaim policy is Delete.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger

	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	nodes   corelisters.NodeLister
	classes storagelisters.StorageClassLister
	synced  []cache.InformerSynced

	claimQueue  *reconcile.Queue
	volumeQueue *reconcile.Queue
}

// New builds the provisioner and registers its informers (claims,
// volumes, nodes, StorageClasses) and handlers on factory. The caller
// starts the factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) (*Controller, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", Name)
	}
	if recorder == nil {
		recorder = &record.FakeRecorder{}
	}
	c := &Controller{client: client, recorder: recorder, log: slog.Default().With("controller", Name)}
	c.claimQueue = reconcile.New("local-path-claims", c.syncClaim)
	c.volumeQueue = reconcile.New("local-path-volumes", c.syncVolume)

	claimInf := factory.Core().V1().PersistentVolumeClaims()
	c.claims = claimInf.Lister()
	enqueueClaim := func(obj any) {
		if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok && wantsVolume(pvc) {
			c.claimQueue.Enqueue(pvc)
		}
	}
	if _, err := claimInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueClaim,
		UpdateFunc: func(_, obj any) { enqueueClaim(obj) },
	}); err != nil {
		return nil, fmt.Errorf("%s: claim handler: %w", Name, err)
	}
	volumeInf := factory.Core().V1().PersistentVolumes()
	c.volumes = volumeInf.Lister()
	enqueueVolume := func(obj any) {
		if pv, ok := obj.(*corev1.PersistentVolume); ok && releasedForDelete(pv) {
			c.volumeQueue.Enqueue(pv)
		}
	}
	if _, err := volumeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueVolume,
		UpdateFunc: func(_, obj any) { enqueueVolume(obj) },
	}); err != nil {
		return nil, fmt.Errorf("%s: volume handler: %w", Name, err)
	}
	nodeInf := factory.Core().V1().Nodes()
	c.nodes = nodeInf.Lister()
	classInf := factory.Storage().V1().StorageClasses()
	c.classes = classInf.Lister()
	c.synced = []cache.InformerSynced{claimInf.Informer().HasSynced, volumeInf.Informer().HasSynced,
		nodeInf.Informer().HasSynced, classInf.Informer().HasSynced}
	return c, nil
}

// Start runs a claim worker and a volume worker until ctx ends.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting")
	var wg sync.WaitGroup
	var claimErr, volumeErr error
	wg.Go(func() { claimErr = c.claimQueue.Run(ctx, 1, c.synced...) })
	wg.Go(func() { volumeErr = c.volumeQueue.Run(ctx, 1, c.synced...) })
	wg.Wait()
	return errors.Join(claimErr, volumeErr)
}

// wantsVolume reports whether the binder handed claim to this provisioner
// and it still has no volume.
func wantsVolume(pvc *corev1.PersistentVolumeClaim) bool {
	return pvc.Spec.VolumeName == "" && pvc.DeletionTimestamp == nil &&
		(pvc.Annotations[storagehelpers.AnnStorageProvisioner] == Provisioner ||
			pvc.Annotations[storagehelpers.AnnBetaStorageProvisioner] == Provisioner)
}

// releasedForDelete reports whether pv is a local-path volume whose claim
// is gone and whose reclaim policy deletes it.
func releasedForDelete(pv *corev1.PersistentVolume) bool {
	return pv.Annotations[ProvisionedBy] == Provisioner && pv.DeletionTimestamp == nil &&
		pv.Status.Phase == corev1.VolumeReleased &&
		pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete
}

// VolumeName is the name of the volume provisioned for a claim, upstream's
// "pvc-<claim uid>".
func VolumeName(claim types.UID) string { return "pvc-" + string(claim) }

// provisionError is a failure worth an event but not a retry: the claim
// cannot be provisioned as it is (a wrong access mode, no selected node)
// and is looked at again only when it changes, or the selected node cannot
// hold the volume and reschedule hands the claim back to the scheduler.
type provisionError struct {
	msg string
	// reschedule asks the scheduler to pick another node: the selected
	// node cannot hold the volume.
	reschedule bool
}

func (e *provisionError) Error() string { return e.msg }

func (c *Controller) syncClaim(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	claim, err := c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || !wantsVolume(claim) {
		return err
	}
	pvName := VolumeName(claim.UID)
	if _, err := c.volumes.Get(pvName); err == nil {
		return nil // made already; the binder binds it
	}
	className := storagehelpers.GetPersistentVolumeClaimClass(claim)
	class, err := c.classes.Get(className)
	if err != nil {
		// The class went away after the binder handed the claim over.
		c.recorder.Event(claim, corev1.EventTypeWarning, reasonProvisioningFailed, err.Error())
		return nil
	}
	if class.Provisioner != Provisioner {
		return nil
	}
	pv, err := c.newVolume(claim, class.ReclaimPolicy, class.MountOptions, pvName)
	if err != nil {
		var pe *provisionError
		if !errors.As(err, &pe) {
			return err
		}
		c.recorder.Event(claim, corev1.EventTypeWarning, reasonProvisioningFailed,
			fmt.Sprintf("failed to provision volume with StorageClass %q: %s", className, pe.msg))
		if pe.reschedule {
			return c.reschedule(ctx, claim)
		}
		return nil
	}
	c.recorder.Event(claim, corev1.EventTypeNormal, reasonProvisioning,
		fmt.Sprintf("External provisioner is provisioning volume for claim %q", ns+"/"+name))
	if _, err := c.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		c.recorder.Event(claim, corev1.EventTypeWarning, reasonProvisioningFailed,
			fmt.Sprintf("failed to provision volume with StorageClass %q: error creating PersistentVolume: %v", className, err))
		return err
	}
	c.log.Info("provisioned", "claim", key, "volume", pvName, "node", pv.Labels[NodeLabel])
	c.recorder.Event(claim, corev1.EventTypeNormal, reasonProvisioningSucceeded, "Successfully provisioned volume "+pvName)
	return nil
}

// newVolume is the volume for claim on its selected node, pre-bound to
// the claim: a directory named after the volume in the node's storage
// directory, reachable only from that node.
func (c *Controller) newVolume(claim *corev1.PersistentVolumeClaim, policy *corev1.PersistentVolumeReclaimPolicy, mountOptions []string, pvName string) (*corev1.PersistentVolume, error) {
	nodeName := claim.Annotations[storagehelpers.AnnSelectedNode]
	if nodeName == "" {
		return nil, &provisionError{msg: "no node was selected: local-path volumes need volumeBindingMode WaitForFirstConsumer"}
	}
	if claim.Spec.Selector != nil {
		return nil, &provisionError{msg: "claim Selector is not supported"}
	}
	if claim.Spec.DataSource != nil || claim.Spec.DataSourceRef != nil {
		return nil, &provisionError{msg: "data sources are not supported: local-path volumes start empty"}
	}
	if m := claim.Spec.VolumeMode; m != nil && *m == corev1.PersistentVolumeBlock {
		return nil, &provisionError{msg: "block volumes are not supported: local-path volumes are directories"}
	}
	for _, m := range claim.Spec.AccessModes {
		if m != corev1.ReadWriteOnce && m != corev1.ReadWriteOncePod {
			return nil, &provisionError{msg: fmt.Sprintf("access mode %s is not supported: local-path volumes support ReadWriteOnce and ReadWriteOncePod", m)}
		}
	}
	size, ok := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		return nil, &provisionError{msg: "claim has no storage request"}
	}
	node, err := c.nodes.Get(nodeName)
	if apierrors.IsNotFound(err) {
		return nil, &provisionError{msg: fmt.Sprintf("node %q not found", nodeName), reschedule: true}
	}
	if err != nil {
		return nil, err
	}
	dir := node.Annotations[DirAnnotation]
	if dir == "" {
		return nil, &provisionError{msg: fmt.Sprintf("node %q offers no local-path storage (it has no %s annotation)", nodeName, DirAnnotation), reschedule: true}
	}
	hostname := node.Labels[hostnameLabel]
	if hostname == "" {
		hostname = node.Name
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if policy != nil {
		reclaim = *policy
	}
	mode := corev1.PersistentVolumeFilesystem
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        pvName,
			Labels:      map[string]string{NodeLabel: nodeName},
			Annotations: map[string]string{ProvisionedBy: Provisioner},
			Finalizers:  []string{Finalizer},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   slices.Clone(claim.Spec.AccessModes),
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              storagehelpers.GetPersistentVolumeClaimClass(claim),
			MountOptions:                  slices.Clone(mountOptions),
			VolumeMode:                    &mode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID, ResourceVersion: claim.ResourceVersion,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: Path(dir, pvName)}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: hostnameLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{hostname},
				}}}},
			}},
		},
	}, nil
}

// reschedule removes the claim's selected node, as upstream's external
// provisioners do when the node cannot hold the volume: the scheduler
// then picks a node again.
func (c *Controller) reschedule(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if _, ok := claim.Annotations[storagehelpers.AnnSelectedNode]; !ok {
		return nil
	}
	clone := claim.DeepCopy()
	delete(clone.Annotations, storagehelpers.AnnSelectedNode)
	_, err := c.client.CoreV1().PersistentVolumeClaims(clone.Namespace).Update(ctx, clone, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// syncVolume deletes a released Delete-policy volume. Its Finalizer keeps
// it until its node has removed the directory.
func (c *Controller) syncVolume(ctx context.Context, key string) error {
	pv, err := c.volumes.Get(key)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || !releasedForDelete(pv) {
		return err
	}
	uid := pv.UID
	err = c.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	switch {
	case err == nil:
		c.log.Info("deleting released volume", "volume", pv.Name, "node", pv.Labels[NodeLabel])
		return nil
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		return nil
	}
	c.recorder.Event(pv, corev1.EventTypeWarning, reasonVolumeFailedDelete, err.Error())
	return err
}
