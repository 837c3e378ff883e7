package persistentvolume

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	storagehelpers "k8s.io/component-helpers/storage/volume"

	"github.com/skiff-io/skiff/internal/controller/pvprotection"
)

// syncClaim reconciles one claim: binds an unbound one (or hands it to a
// provisioner, or waits), and checks a bound one still has its volume.
func (c *Controller) syncClaim(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	claim, err := c.claim(ns, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("claim %s: %w", key, err)
	}
	if !metav1.HasAnnotation(claim.ObjectMeta, storagehelpers.AnnBindCompleted) {
		return c.syncUnboundClaim(ctx, claim)
	}
	return c.syncBoundClaim(ctx, claim)
}

// syncUnboundClaim handles a claim that has not completed binding.
func (c *Controller) syncUnboundClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if claim.Spec.VolumeName != "" {
		return c.syncRequestedVolume(ctx, claim)
	}
	delayBinding, err := storagehelpers.IsDelayBindingMode(claim, c.classLister)
	if err != nil {
		return fmt.Errorf("claim %s/%s: %w", claim.Namespace, claim.Name, err)
	}
	volumes, err := c.allVolumes()
	if err != nil {
		return err
	}
	volume, err := findBestMatch(claim, volumes, delayBinding)
	if err != nil {
		return err
	}
	if volume != nil {
		return c.bind(ctx, volume, claim)
	}

	// No volume: give the claim the default class if it has none, then
	// wait for the scheduler, hand it to a provisioner, or just wait.
	assigned, err := c.assignDefaultClass(ctx, claim)
	if err != nil || assigned {
		// The update brings the claim back with its class.
		return err
	}
	switch {
	case delayBinding && !storagehelpers.IsDelayBindingProvisioning(claim):
		if err := c.eventWaitForConsumer(claim); err != nil {
			return err
		}
	case storagehelpers.GetPersistentVolumeClaimClass(claim) != "":
		// The claim stays as it is while provisioning is pending.
		return c.provision(ctx, claim)
	default:
		c.recorder.Event(claim, corev1.EventTypeNormal, reasonFailedBinding, "no persistent volumes available for this claim and no storage class is set")
	}
	_, err = c.setClaimPhase(ctx, claim, corev1.ClaimPending, nil)
	return err
}

// syncRequestedVolume handles an unbound claim that names its volume in
// spec.volumeName (pre-bound by its creator, or half-bound by the binder).
func (c *Controller) syncRequestedVolume(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	volume, err := c.volume(claim.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		// Not there (yet): the resync looks again.
		_, err = c.setClaimPhase(ctx, claim, corev1.ClaimPending, nil)
		return err
	}
	if err != nil {
		return fmt.Errorf("claim %s/%s: %w", claim.Namespace, claim.Name, err)
	}
	switch {
	case volume.Spec.ClaimRef == nil:
		if why := satisfies(volume, claim); why != nil {
			c.recorder.Event(claim, corev1.EventTypeWarning, reasonVolumeMismatch,
				fmt.Sprintf("Cannot bind to requested volume %q: %s", volume.Name, why))
			_, err = c.setClaimPhase(ctx, claim, corev1.ClaimPending, nil)
			return err
		}
		return c.bind(ctx, volume, claim)
	case storagehelpers.IsVolumeBoundToClaim(volume, claim):
		// The volume is (pre-)bound to this claim: finish the binding.
		return c.bind(ctx, volume, claim)
	default:
		c.recorder.Event(claim, corev1.EventTypeWarning, reasonFailedBinding,
			fmt.Sprintf("volume %q already bound to a different claim.", volume.Name))
		if metav1.HasAnnotation(claim.ObjectMeta, storagehelpers.AnnBoundByController) {
			// Only a removed bind-completed annotation gets here.
			return fmt.Errorf("invalid binding of claim %s/%s to volume %q: volume already claimed by %s/%s",
				claim.Namespace, claim.Name, claim.Spec.VolumeName, volume.Spec.ClaimRef.Namespace, volume.Spec.ClaimRef.Name)
		}
		_, err = c.setClaimPhase(ctx, claim, corev1.ClaimPending, nil)
		return err
	}
}

// syncBoundClaim handles a claim that has completed binding: it stays Bound
// while its volume points back at it, and is Lost otherwise.
func (c *Controller) syncBoundClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if claim.Spec.VolumeName == "" {
		return c.setClaimPhaseWithEvent(ctx, claim, corev1.ClaimLost, corev1.EventTypeWarning, reasonClaimLost,
			"Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
	}
	volume, err := c.volume(claim.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		// Ask the server before declaring data lost: the volume may be
		// newer than the cache (skiff's addition to upstream).
		volume, err = c.client.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return c.setClaimPhaseWithEvent(ctx, claim, corev1.ClaimLost, corev1.EventTypeWarning, reasonClaimLost,
				"Bound claim has lost its PersistentVolume. Data on the volume is lost!")
		}
	}
	if err != nil {
		return fmt.Errorf("claim %s/%s: volume %s: %w", claim.Namespace, claim.Name, claim.Spec.VolumeName, err)
	}
	if volume.Spec.ClaimRef == nil || volume.Spec.ClaimRef.UID == claim.UID {
		// Bound, or the volume came unbound (or its binding is not in
		// the cache yet): bind again, a no-op when all is in place.
		return c.bind(ctx, volume, claim)
	}
	return c.setClaimPhaseWithEvent(ctx, claim, corev1.ClaimLost, corev1.EventTypeWarning, reasonClaimMisbound,
		"Two claims are bound to the same volume, this one is bound incorrectly")
}

// eventWaitForConsumer reports why a WaitForFirstConsumer claim waits:
// for a pod to use it, or for the scheduler to place the pods that do.
func (c *Controller) eventWaitForConsumer(claim *corev1.PersistentVolumeClaim) error {
	pods, err := pvprotection.PodsUsingClaim(c.pods, claim.Namespace, claim.Name)
	if err != nil {
		return err
	}
	var unscheduled []string
	for _, p := range pods {
		if !pvprotection.PodTerminated(p) && p.Spec.NodeName == "" {
			unscheduled = append(unscheduled, p.Name)
		}
	}
	sort.Strings(unscheduled)
	switch len(unscheduled) {
	case 0:
		c.recorder.Event(claim, corev1.EventTypeNormal, reasonWaitForFirstConsumer, "waiting for first consumer to be created before binding")
	case 1:
		c.recorder.Event(claim, corev1.EventTypeNormal, reasonWaitForPodScheduled, fmt.Sprintf("waiting for pod %s to be scheduled", unscheduled[0]))
	default:
		c.recorder.Event(claim, corev1.EventTypeNormal, reasonWaitForPodScheduled,
			fmt.Sprintf("waiting for pods %s to be scheduled", strings.Join(unscheduled, ",")))
	}
	return nil
}

// provision hands claim to its class's provisioner: it names the
// provisioner in the claim's storage-provisioner annotations, which
// external provisioners watch for. A class that does not exist, or whose
// provisioner would be an in-tree plugin, is reported and retried at the
// next sync.
func (c *Controller) provision(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	class, err := c.classLister.Get(storagehelpers.GetPersistentVolumeClaimClass(claim))
	if err != nil {
		c.recorder.Event(claim, corev1.EventTypeWarning, reasonProvisioningFailed, err.Error())
		return nil
	}
	if strings.HasPrefix(class.Provisioner, "kubernetes.io/") {
		// Upstream looks for an in-tree plugin by that name; skiff has
		// none.
		c.recorder.Event(claim, corev1.EventTypeWarning, reasonProvisioningFailed,
			fmt.Sprintf("no volume plugin matched name: %s", class.Provisioner))
		return nil
	}
	claim, err = c.setProvisioner(ctx, claim, class.Provisioner)
	if err != nil {
		c.recorder.Event(claim, corev1.EventTypeWarning, reasonProvisioningFailed, fmt.Sprintf("Error saving claim: %v", err))
		return err
	}
	c.recorder.Event(claim, corev1.EventTypeNormal, reasonExternalProvisioning,
		fmt.Sprintf("Waiting for a volume to be created either by the external provisioner '%s' "+
			"or manually by the system administrator. If volume creation is delayed, please verify that "+
			"the provisioner is running and correctly registered.", class.Provisioner))
	return nil
}

// setProvisioner names provisioner in claim's storage-provisioner
// annotations (the GA one and, still, the beta one).
func (c *Controller) setProvisioner(ctx context.Context, claim *corev1.PersistentVolumeClaim, provisioner string) (*corev1.PersistentVolumeClaim, error) {
	if claim.Annotations[storagehelpers.AnnStorageProvisioner] == provisioner {
		return claim, nil
	}
	clone := claim.DeepCopy()
	metav1.SetMetaDataAnnotation(&clone.ObjectMeta, storagehelpers.AnnBetaStorageProvisioner, provisioner)
	metav1.SetMetaDataAnnotation(&clone.ObjectMeta, storagehelpers.AnnStorageProvisioner, provisioner)
	out, err := c.updateClaim(ctx, clone)
	if err != nil {
		return claim, err
	}
	return out, nil
}

// assignDefaultClass gives a claim without a class the default
// StorageClass, if there is one, and reports whether it did.
func (c *Controller) assignDefaultClass(ctx context.Context, claim *corev1.PersistentVolumeClaim) (bool, error) {
	if storagehelpers.PersistentVolumeClaimHasClass(claim) {
		return false, nil
	}
	classes, err := c.classLister.List(labels.Everything())
	if err != nil {
		return false, fmt.Errorf("listing storage classes: %w", err)
	}
	class := defaultClass(classes)
	if class == nil {
		return false, nil
	}
	clone := claim.DeepCopy()
	clone.Spec.StorageClassName = &class.Name
	if _, err := c.updateClaim(ctx, clone); err != nil {
		return false, err
	}
	c.log.Info("assigned default storage class", "claim", claim.Namespace+"/"+claim.Name, "class", class.Name)
	return true, nil
}

// defaultClass returns the default StorageClass: of those marked default,
// the newest, then the first by name (upstream's GetDefaultClass).
func defaultClass(classes []*storagev1.StorageClass) *storagev1.StorageClass {
	var best *storagev1.StorageClass
	for _, class := range classes {
		if !isDefaultClass(class) {
			continue
		}
		if best == nil {
			best = class
			continue
		}
		a, b := class.CreationTimestamp.UnixNano(), best.CreationTimestamp.UnixNano()
		if a > b || (a == b && class.Name < best.Name) {
			best = class
		}
	}
	return best
}

func isDefaultClass(class *storagev1.StorageClass) bool {
	return class.Annotations[annIsDefaultClass] == "true" || class.Annotations[annBetaIsDefaultClass] == "true"
}
