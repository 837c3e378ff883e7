package deployment

import (
	"fmt"
	"math"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// calculateStatus computes the Deployment's status counts and its
// Available condition from its ReplicaSets (working copies: spec counts as
// planned, status as observed). The other conditions are carried over.
func calculateStatus(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, now time.Time) appsv1.DeploymentStatus {
	st := appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		CollisionCount:     d.Status.CollisionCount,
		Conditions:         slices.Clone(d.Status.Conditions),
	}
	for _, rs := range all {
		st.Replicas += rs.Status.Replicas
		st.ReadyReplicas += rs.Status.ReadyReplicas
		st.AvailableReplicas += rs.Status.AvailableReplicas
	}
	if newRS != nil {
		st.UpdatedReplicas = newRS.Status.Replicas
	}
	st.UnavailableReplicas = max(sumReplicas(all)-st.AvailableReplicas, 0)
	if st.AvailableReplicas >= replicasOf(d)-maxUnavailable(d) {
		setCondition(&st, condition(appsv1.DeploymentAvailable, corev1.ConditionTrue, reasonMinimumAvailable, "Deployment has minimum availability.", now))
	} else {
		setCondition(&st, condition(appsv1.DeploymentAvailable, corev1.ConditionFalse, reasonMinimumUnavailable, "Deployment does not have minimum availability.", now))
	}
	return st
}

// hasProgressDeadline reports whether progressDeadlineSeconds is set and
// not the "no deadline" value (MaxInt32).
func hasProgressDeadline(d *appsv1.Deployment) bool {
	p := d.Spec.ProgressDeadlineSeconds
	return p != nil && *p != math.MaxInt32
}

// deploymentComplete reports whether all replicas are updated and
// available and no old replica runs, for the current generation.
func deploymentComplete(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	n := replicasOf(d)
	return st.UpdatedReplicas == n && st.Replicas == n && st.AvailableReplicas == n && st.ObservedGeneration >= d.Generation
}

// deploymentProgressing reports whether st shows progress over the
// Deployment's current status: more updated, ready or available replicas,
// or fewer old ones.
func deploymentProgressing(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	old := d.Status
	return st.UpdatedReplicas > old.UpdatedReplicas ||
		st.Replicas-st.UpdatedReplicas < old.Replicas-old.UpdatedReplicas ||
		st.ReadyReplicas > old.ReadyReplicas ||
		st.AvailableReplicas > old.AvailableReplicas
}

// timedOut reports whether the Progressing condition in st has not been
// updated for progressDeadlineSeconds.
func timedOut(d *appsv1.Deployment, st *appsv1.DeploymentStatus, now time.Time) bool {
	c := getCondition(st, appsv1.DeploymentProgressing)
	if c == nil || !hasProgressDeadline(d) {
		return false
	}
	switch c.Reason {
	case reasonNewRSAvailable:
		return false
	case reasonTimedOut:
		return true
	}
	return c.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second).Before(now)
}

// progress updates the Progressing condition of st (upstream's
// syncRolloutStatus) and returns how long until the deadline should be
// checked again (0: no check needed).
func progress(d *appsv1.Deployment, st *appsv1.DeploymentStatus, newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet, now time.Time) time.Duration {
	replicaFailure(st, newRS, oldRSs)
	if !hasProgressDeadline(d) {
		removeCondition(st, appsv1.DeploymentProgressing)
		return 0
	}
	cur := getCondition(st, appsv1.DeploymentProgressing)
	if st.Replicas == st.UpdatedReplicas && cur != nil && cur.Reason == reasonNewRSAvailable {
		return 0 // complete, and already said so
	}
	subject := fmt.Sprintf("Deployment %q", d.Name)
	if newRS != nil {
		subject = fmt.Sprintf("ReplicaSet %q", newRS.Name)
	}
	switch {
	case deploymentComplete(d, st):
		setCondition(st, condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonNewRSAvailable, subject+" has successfully progressed.", now))
		return 0
	case deploymentProgressing(d, st):
		c := condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonRSUpdated, subject+" is progressing.", now)
		// Progress refreshes lastUpdateTime even when the reason stays.
		if cur != nil && cur.Status == corev1.ConditionTrue {
			c.LastTransitionTime = cur.LastTransitionTime
		}
		removeCondition(st, appsv1.DeploymentProgressing)
		setCondition(st, c)
	case timedOut(d, st, now):
		setCondition(st, condition(appsv1.DeploymentProgressing, corev1.ConditionFalse, reasonTimedOut, subject+" has timed out progressing.", now))
		return 0
	}
	cur = getCondition(st, appsv1.DeploymentProgressing)
	if cur == nil || cur.Reason == reasonTimedOut || cur.Reason == reasonNewRSAvailable {
		return 0
	}
	deadline := cur.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second)
	// A little past the deadline: the check is strictly "before now".
	return max(deadline.Sub(now), 0) + 200*time.Millisecond
}

// replicaFailure mirrors a ReplicaFailure condition of the new ReplicaSet
// (else of the first old one that has it) on the Deployment, as upstream
// does: it says why pods cannot be created (quota, admission).
func replicaFailure(st *appsv1.DeploymentStatus, newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) {
	for _, rs := range append([]*appsv1.ReplicaSet{newRS}, oldRSs...) {
		if rs == nil {
			continue
		}
		for _, c := range rs.Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure {
				setCondition(st, appsv1.DeploymentCondition{
					Type: appsv1.DeploymentReplicaFailure, Status: c.Status, Reason: c.Reason, Message: c.Message,
					LastUpdateTime: c.LastTransitionTime, LastTransitionTime: c.LastTransitionTime,
				})
				return
			}
		}
	}
	removeCondition(st, appsv1.DeploymentReplicaFailure)
}

// pausedCondition sets the Progressing condition to Unknown
// DeploymentPaused when the Deployment is paused, and to Unknown
// DeploymentResumed when it was paused and no longer is, as upstream
// does. The resume restarts the progress deadline.
func pausedCondition(d *appsv1.Deployment, st *appsv1.DeploymentStatus, now time.Time) {
	if !hasProgressDeadline(d) {
		return
	}
	cur := getCondition(st, appsv1.DeploymentProgressing)
	wasPaused := cur != nil && cur.Reason == reasonPaused
	switch {
	case d.Spec.Paused && !wasPaused:
		setCondition(st, condition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, reasonPaused, "Deployment is paused", now))
	case !d.Spec.Paused && wasPaused:
		setCondition(st, condition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, reasonResumed, "Deployment is resumed", now))
	}
}

func condition(t appsv1.DeploymentConditionType, s corev1.ConditionStatus, reason, msg string, now time.Time) appsv1.DeploymentCondition {
	ts := metav1.NewTime(now)
	return appsv1.DeploymentCondition{Type: t, Status: s, Reason: reason, Message: msg, LastUpdateTime: ts, LastTransitionTime: ts}
}

func getCondition(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// setCondition sets c unless a condition of its type with the same status
// and reason exists (then nothing changes, timestamps included); a status
// that stays keeps its lastTransitionTime.
func setCondition(st *appsv1.DeploymentStatus, c appsv1.DeploymentCondition) {
	cur := getCondition(st, c.Type)
	if cur != nil && cur.Status == c.Status && cur.Reason == c.Reason {
		return
	}
	if cur != nil && cur.Status == c.Status {
		c.LastTransitionTime = cur.LastTransitionTime
	}
	removeCondition(st, c.Type)
	st.Conditions = append(st.Conditions, c)
}

func removeCondition(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) {
	st.Conditions = slices.DeleteFunc(st.Conditions, func(c appsv1.DeploymentCondition) bool { return c.Type == t })
	if len(st.Conditions) == 0 {
		st.Conditions = nil
	}
}
