package persistentvolume

import (
	"context"
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	storagehelpers "k8s.io/component-helpers/storage/volume"
)

// bind binds volume and claim to each other and marks both Bound, volume
// first: its claimRef, its phase, the claim's volumeName and annotations,
// the claim's phase. Each step writes only if something is missing, so
// binding a bound pair writes nothing. It stops at the first failure; the
// next sync takes up where it stopped.
func (c *Controller) bind(ctx context.Context, volume *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) error {
	clone, dirty, err := storagehelpers.GetBindVolumeToClaim(volume, claim)
	if err != nil {
		return fmt.Errorf("volume %s: %w", volume.Name, err)
	}
	if dirty {
		if volume, err = c.updateVolume(ctx, clone); err != nil {
			return err
		}
		c.log.Info("volume bound to claim", "volume", volume.Name, "claim", claim.Namespace+"/"+claim.Name)
	}
	if volume, err = c.setVolumePhase(ctx, volume, corev1.VolumeBound, ""); err != nil {
		return err
	}
	if claim, err = c.bindClaim(ctx, claim, volume); err != nil {
		return err
	}
	_, err = c.setClaimPhase(ctx, claim, corev1.ClaimBound, volume)
	return err
}

// bindClaim points claim at volume and marks its binding completed.
func (c *Controller) bindClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim, volume *corev1.PersistentVolume) (*corev1.PersistentVolumeClaim, error) {
	clone := claim.DeepCopy()
	dirty := false
	if claim.Spec.VolumeName != volume.Name {
		// The binder chose this volume: say so.
		clone.Spec.VolumeName = volume.Name
		if !metav1.HasAnnotation(clone.ObjectMeta, storagehelpers.AnnBoundByController) {
			metav1.SetMetaDataAnnotation(&clone.ObjectMeta, storagehelpers.AnnBoundByController, "yes")
		}
		dirty = true
	}
	if !metav1.HasAnnotation(clone.ObjectMeta, storagehelpers.AnnBindCompleted) {
		metav1.SetMetaDataAnnotation(&clone.ObjectMeta, storagehelpers.AnnBindCompleted, "yes")
		dirty = true
	}
	if !dirty {
		return claim, nil
	}
	out, err := c.updateClaim(ctx, clone)
	if err != nil {
		return nil, err
	}
	c.log.Info("claim bound to volume", "claim", claim.Namespace+"/"+claim.Name, "volume", volume.Name)
	return out, nil
}

// unbind undoes volume's binding and makes it Available: a binding the
// binder made goes entirely; a claimRef the user set keeps its name and
// loses its UID, leaving the volume pre-bound to that claim.
func (c *Controller) unbind(ctx context.Context, volume *corev1.PersistentVolume) error {
	clone := volume.DeepCopy()
	if metav1.HasAnnotation(volume.ObjectMeta, storagehelpers.AnnBoundByController) {
		clone.Spec.ClaimRef = nil
		delete(clone.Annotations, storagehelpers.AnnBoundByController)
		if len(clone.Annotations) == 0 {
			clone.Annotations = nil
		}
	} else {
		clone.Spec.ClaimRef.UID = ""
	}
	out, err := c.updateVolume(ctx, clone)
	if err != nil {
		return err
	}
	c.log.Info("volume unbound", "volume", volume.Name)
	_, err = c.setVolumePhase(ctx, out, corev1.VolumeAvailable, "")
	return err
}

// setClaimPhase sets claim's phase and, from volume (nil: none), its
// access modes and, when the claim becomes Bound, its capacity. It writes
// only what differs.
func (c *Controller) setClaimPhase(ctx context.Context, claim *corev1.PersistentVolumeClaim, phase corev1.PersistentVolumeClaimPhase, volume *corev1.PersistentVolume) (*corev1.PersistentVolumeClaim, error) {
	clone := claim.DeepCopy()
	dirty := false
	if claim.Status.Phase != phase {
		clone.Status.Phase = phase
		dirty = true
	}
	if volume == nil {
		if claim.Status.AccessModes != nil {
			clone.Status.AccessModes = nil
			dirty = true
		}
		if claim.Status.Capacity != nil {
			clone.Status.Capacity = nil
			dirty = true
		}
	} else {
		if !reflect.DeepEqual(claim.Status.AccessModes, volume.Spec.AccessModes) {
			clone.Status.AccessModes = volume.Spec.AccessModes
			dirty = true
		}
		// Capacity is set as the claim becomes Bound, not after: a
		// difference then may be a file system smaller than its device.
		if claim.Status.Phase != phase {
			capacity, ok := volume.Spec.Capacity[corev1.ResourceStorage]
			if !ok {
				return nil, fmt.Errorf("volume %s has no storage capacity", volume.Name)
			}
			current, has := claim.Status.Capacity[corev1.ResourceStorage]
			if pre, resizing := volume.Annotations[annPreResizeCapacity]; resizing {
				q, err := resource.ParseQuantity(pre)
				if err != nil {
					q = capacity
				}
				if clone.Status.Capacity == nil {
					clone.Status.Capacity = corev1.ResourceList{}
				}
				clone.Status.Capacity[corev1.ResourceStorage] = q
				dirty = true
			} else if !has || capacity.Cmp(current) != 0 {
				clone.Status.Capacity = volume.Spec.Capacity
				dirty = true
			}
		}
	}
	if !dirty {
		return claim, nil
	}
	out, err := c.updateClaimStatus(ctx, clone)
	if err != nil {
		return nil, err
	}
	if claim.Status.Phase != phase {
		c.log.Info("claim entered phase", "claim", claim.Namespace+"/"+claim.Name, "phase", phase)
	}
	return out, nil
}

// setClaimPhaseWithEvent sets claim's phase (clearing its access modes and
// capacity) and records the event, both only when the phase changes.
func (c *Controller) setClaimPhaseWithEvent(ctx context.Context, claim *corev1.PersistentVolumeClaim, phase corev1.PersistentVolumeClaimPhase, eventType, reason, message string) error {
	if claim.Status.Phase == phase {
		return nil
	}
	out, err := c.setClaimPhase(ctx, claim, phase, nil)
	if err != nil {
		return err
	}
	c.recorder.Event(out, eventType, reason, message)
	return nil
}

// setVolumePhase sets volume's phase and status message, if the phase
// differs.
func (c *Controller) setVolumePhase(ctx context.Context, volume *corev1.PersistentVolume, phase corev1.PersistentVolumePhase, message string) (*corev1.PersistentVolume, error) {
	if volume.Status.Phase == phase {
		return volume, nil
	}
	clone := volume.DeepCopy()
	clone.Status.Phase = phase
	clone.Status.Message = message
	out, err := c.updateVolumeStatus(ctx, clone)
	if err != nil {
		return nil, err
	}
	c.log.Info("volume entered phase", "volume", volume.Name, "phase", phase)
	return out, nil
}

// setVolumePhaseWithEvent sets volume's phase with message and records the
// event, both only when the phase changes.
func (c *Controller) setVolumePhaseWithEvent(ctx context.Context, volume *corev1.PersistentVolume, phase corev1.PersistentVolumePhase, eventType, reason, message string) error {
	if volume.Status.Phase == phase {
		return nil
	}
	out, err := c.setVolumePhase(ctx, volume, phase, message)
	if err != nil {
		return err
	}
	c.recorder.Event(out, eventType, reason, message)
	return nil
}
