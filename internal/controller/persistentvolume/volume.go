package persistentvolume

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	storagehelpers "k8s.io/component-helpers/storage/volume"

	"github.com/skiff-io/skiff/internal/controller/pvprotection"
)

// syncVolume reconciles one volume: its phase from its binding, and its
// reclaim policy once its claim is gone.
func (c *Controller) syncVolume(ctx context.Context, name string) error {
	volume, err := c.volume(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	ref := volume.Spec.ClaimRef
	if ref == nil || ref.UID == "" {
		// Unused, or pre-bound to a claim that has not bound yet (the
		// claim's sync binds it).
		_, err := c.setVolumePhase(ctx, volume, corev1.VolumeAvailable, "")
		return err
	}

	claim, err := c.claimOf(ctx, volume)
	if err != nil {
		return err
	}
	switch {
	case claim == nil:
		// The claim is gone: release the volume (keeping its claimRef)
		// and apply its reclaim policy. A Failed volume stays Failed, so
		// the user sees what went wrong, and is retried each sync.
		if volume.Status.Phase != corev1.VolumeReleased && volume.Status.Phase != corev1.VolumeFailed {
			c.log.Info("volume released", "volume", volume.Name, "reclaimPolicy", volume.Spec.PersistentVolumeReclaimPolicy)
			if volume, err = c.setVolumePhase(ctx, volume, corev1.VolumeReleased, ""); err != nil {
				return err
			}
		}
		return c.reclaim(ctx, volume)

	case claim.Spec.VolumeName == "":
		// Half bound: the claim's sync finishes it. A volumeMode
		// mismatch means it never will.
		if storagehelpers.CheckVolumeModeMismatches(&claim.Spec, &volume.Spec) {
			c.recorder.Event(volume, corev1.EventTypeWarning, reasonVolumeMismatch,
				fmt.Sprintf("Cannot bind PersistentVolume to requested PersistentVolumeClaim %q due to incompatible volumeMode.", claim.Name))
			c.recorder.Event(claim, corev1.EventTypeWarning, reasonVolumeMismatch,
				fmt.Sprintf("Cannot bind PersistentVolume %q to requested PersistentVolumeClaim due to incompatible volumeMode.", volume.Name))
			return nil
		}
		// This is also how a provisioned volume gets bound quickly: the
		// provisioner creates it pre-bound and the claim is synced now.
		c.claimQueue.Add(claim.Namespace + "/" + claim.Name)
		return nil

	case claim.Spec.VolumeName == volume.Name:
		_, err := c.setVolumePhase(ctx, volume, corev1.VolumeBound, "")
		return err

	case metav1.HasAnnotation(volume.ObjectMeta, storagehelpers.AnnDynamicallyProvisioned) &&
		volume.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete:
		// Provisioned for a claim that got bound to another volume: not
		// needed, release and delete it.
		if volume.Status.Phase != corev1.VolumeReleased && volume.Status.Phase != corev1.VolumeFailed {
			if volume, err = c.setVolumePhase(ctx, volume, corev1.VolumeReleased, ""); err != nil {
				return err
			}
		}
		return c.reclaim(ctx, volume)

	default:
		// The claim is bound to another volume. A binding the binder
		// made is undone; a user's pre-binding is kept, without UID.
		return c.unbind(ctx, volume)
	}
}

// claimOf returns the claim volume's claimRef names, or nil when it is gone
// or is another claim of the same name. Before deciding it is gone it asks
// the API server: a claim just made by another component may not be in the
// cache yet, and releasing its volume would be wrong.
func (c *Controller) claimOf(ctx context.Context, volume *corev1.PersistentVolume) (*corev1.PersistentVolumeClaim, error) {
	ref := volume.Spec.ClaimRef
	claim, err := c.claim(ref.Namespace, ref.Name)
	switch {
	case apierrors.IsNotFound(err):
		if volume.Status.Phase == corev1.VolumeReleased || volume.Status.Phase == corev1.VolumeFailed {
			return nil, nil
		}
		claim, err = c.client.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("volume %s: claim %s/%s: %w", volume.Name, ref.Namespace, ref.Name, err)
		}
	case err != nil:
		return nil, fmt.Errorf("volume %s: claim %s/%s: %w", volume.Name, ref.Namespace, ref.Name, err)
	case claim.UID != ref.UID:
		// Maybe the cache is behind a claim recreated under the name.
		claim, err = c.client.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("volume %s: claim %s/%s: %w", volume.Name, ref.Namespace, ref.Name, err)
		}
	}
	if claim.UID != ref.UID {
		return nil, nil
	}
	return claim, nil
}

// reclaim applies a released volume's reclaim policy.
func (c *Controller) reclaim(ctx context.Context, volume *corev1.PersistentVolume) error {
	if volume.Annotations[storagehelpers.AnnMigratedTo] != "" {
		// A CSI driver's provisioner owns it.
		return nil
	}
	switch volume.Spec.PersistentVolumeReclaimPolicy {
	case corev1.PersistentVolumeReclaimRetain:
		return nil
	case corev1.PersistentVolumeReclaimDelete:
		return c.delete(ctx, volume)
	case corev1.PersistentVolumeReclaimRecycle:
		return c.recycle(ctx, volume)
	default:
		return c.setVolumePhaseWithEvent(ctx, volume, corev1.VolumeFailed, corev1.EventTypeWarning, reasonUnknownReclaimPolicy,
			"Volume has unrecognized PersistentVolumeReclaimPolicy")
	}
}

// delete carries out reclaim policy Delete. An external deleter (the
// provisioner named in pv.kubernetes.io/provisioned-by, or a CSI driver)
// deletes the storage and the volume itself: the binder waits. Any other
// volume needs an in-tree plugin, which skiff does not have: the volume
// goes Failed with upstream's message, and each sync tries again.
func (c *Controller) delete(ctx context.Context, volume *corev1.PersistentVolume) error {
	err := inTreeDeleter(volume)
	if err == nil {
		c.log.Debug("volume left to its external deleter", "volume", volume.Name)
		return nil
	}
	return c.setVolumePhaseWithEvent(ctx, volume, corev1.VolumeFailed, corev1.EventTypeWarning, reasonVolumeFailedDelete, err.Error())
}

// inTreeDeleter returns nil when volume is deleted by an external deleter,
// and otherwise why no in-tree plugin can delete it (upstream's
// findDeletablePlugin, without plugins).
func inTreeDeleter(volume *corev1.PersistentVolume) error {
	if by := volume.Annotations[storagehelpers.AnnDynamicallyProvisioned]; by != "" {
		if !strings.HasPrefix(by, "kubernetes.io/") {
			return nil
		}
		return fmt.Errorf("no volume plugin matched name: %s", by)
	}
	if volume.Spec.CSI != nil {
		return nil
	}
	return fmt.Errorf("error getting deleter volume plugin for volume %q: no volume plugin matched", volume.Name)
}

// recycle carries out the deprecated reclaim policy Recycle, which needs an
// in-tree recycler: the volume goes Failed, unless pods still use its old
// claim, which upstream waits for first.
func (c *Controller) recycle(ctx context.Context, volume *corev1.PersistentVolume) error {
	ref := volume.Spec.ClaimRef
	pods, err := pvprotection.PodsUsingClaim(c.pods, ref.Namespace, ref.Name)
	if err != nil {
		return err
	}
	var users []string
	for _, p := range pods {
		if !pvprotection.PodTerminated(p) {
			users = append(users, p.Namespace+"/"+p.Name)
		}
	}
	if len(users) > 0 {
		if _, err := c.claim(ref.Namespace, ref.Name); apierrors.IsNotFound(err) {
			sort.Strings(users)
			c.recorder.Event(volume, corev1.EventTypeNormal, reasonVolumeFailedRecycle,
				fmt.Sprintf("Volume is used by pods: %s", strings.Join(users, ",")))
			return nil
		}
	}
	return c.setVolumePhaseWithEvent(ctx, volume, corev1.VolumeFailed, corev1.EventTypeWarning, reasonVolumeFailedRecycle,
		"No recycler plugin found for the volume!")
}
