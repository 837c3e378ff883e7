package deployment

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// rollback is an automatic rollback the controller is to perform.
type rollback struct {
	// from is the new ReplicaSet whose rollout timed out (nil if it was
	// never created); to is the ReplicaSet rolled back to.
	from, to *appsv1.ReplicaSet
	// fromRevision and toRevision name them in the event and condition.
	fromRevision, toRevision int64
	// template is to's pod template without the pod-template-hash label:
	// the Deployment's new spec.template.
	template corev1.PodTemplateSpec
}

// wantsAutoRollback reports whether d asks for automatic rollback and its
// current rollout (the generation its status describes) has exceeded its
// progress deadline.
func wantsAutoRollback(d *appsv1.Deployment) bool {
	if d.Annotations[AutoRollbackAnnotation] != "true" || d.Spec.Paused || d.DeletionTimestamp != nil {
		return false
	}
	if d.Status.ObservedGeneration < d.Generation {
		return false
	}
	c := getCondition(&d.Status, appsv1.DeploymentProgressing)
	return c != nil && c.Status == corev1.ConditionFalse && c.Reason == reasonTimedOut
}

// rollbackTarget picks the ReplicaSet to roll back to: among the old
// ReplicaSets marked available (AvailableAtRevisionAnnotation), the one
// with the highest revision. The new ReplicaSet is never a target, so a
// rollback that itself times out does not return to the revision it came
// from; and because the failing ReplicaSet loses its mark when it is
// rolled back from, every automatic rollback consumes a mark and the
// sequence ends.
func rollbackTarget(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) *rollback {
	var to *appsv1.ReplicaSet
	for _, rs := range oldRSs {
		if _, ok := rs.Annotations[AvailableAtRevisionAnnotation]; !ok || rs.DeletionTimestamp != nil {
			continue
		}
		if to == nil || revisionOf(rs.Annotations) > revisionOf(to.Annotations) {
			to = rs
		}
	}
	if to == nil {
		return nil
	}
	rb := &rollback{from: newRS, to: to, toRevision: revisionOf(to.Annotations)}
	if newRS != nil {
		rb.fromRevision = revisionOf(newRS.Annotations)
	} else {
		rb.fromRevision = revisionOf(d.Annotations)
	}
	t := to.Spec.Template.DeepCopy()
	delete(t.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	if len(t.Labels) == 0 {
		t.Labels = nil
	}
	rb.template = *t
	return rb
}

// markAvailable records on the new ReplicaSet (a working copy) that it
// had all of the Deployment's replicas available at its revision.
func markAvailable(newRS *appsv1.ReplicaSet) {
	rev := strconv.FormatInt(revisionOf(newRS.Annotations), 10)
	if newRS.Annotations[AvailableAtRevisionAnnotation] == rev {
		return
	}
	if newRS.Annotations == nil {
		newRS.Annotations = map[string]string{}
	}
	newRS.Annotations[AvailableAtRevisionAnnotation] = rev
}
