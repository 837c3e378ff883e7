package disruption

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-io/skiff/internal/controller/podset"
)

// DisruptedPodTimeout is how long an entry of status.disruptedPods (added
// by the API server's eviction) keeps its pod out of currentHealthy when
// the pod has not started terminating by then: upstream's 2 minutes.
const DisruptedPodTimeout = 2 * time.Minute

// Condition values, as upstream.
const (
	reasonSufficientPods   = policyv1.SufficientPodsReason
	reasonInsufficientPods = policyv1.InsufficientPodsReason
)

// scaleFunc resolves a pod's controller to the identity and desired
// replicas of the workload that scales it (a Deployment for a ReplicaSet it
// owns). ok is false when the controller is unknown or not a scalable kind.
type scaleFunc func(namespace string, ref *metav1.OwnerReference) (uid types.UID, replicas int32, ok bool)

// expectedFromControllers is the number of pods the workloads behind pods
// want: the sum of each distinct controller's replicas; a pod without a
// controller, or whose controller cannot be resolved, counts as one.
// Upstream treats such pods as an error (the budget then allows no
// disruption); skiff counts them as themselves.
func expectedFromControllers(pods []*corev1.Pod, scale scaleFunc) int32 {
	var n int32
	seen := map[types.UID]bool{}
	for _, p := range pods {
		if p == nil {
			continue
		}
		ref := metav1.GetControllerOf(p)
		if ref == nil || scale == nil {
			n++
			continue
		}
		uid, replicas, ok := scale(p.Namespace, ref)
		if !ok {
			n++
			continue
		}
		if !seen[uid] {
			seen[uid] = true
			n += replicas
		}
	}
	return n
}

// computeStatus returns the status pdb should have over pods (the pods its
// selector matches in its namespace) at now, and how long until it must be
// computed again because a disruptedPods entry expires (0: no need).
//
// expectedPods is the number of matched pods when minAvailable is an
// integer, else the controllers' replicas (expectedFromControllers through
// scale). desiredHealthy is minAvailable (a percentage rounded up), or
// expectedPods minus maxUnavailable (a percentage rounded up), never below
// 0. currentHealthy counts Ready pods that are not being deleted and not
// recently evicted. disruptionsAllowed is currentHealthy - desiredHealthy,
// at least 0, and 0 when no pods are expected.
func computeStatus(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, scale scaleFunc, now time.Time) (policyv1.PodDisruptionBudgetStatus, time.Duration) {
	if pdb == nil {
		return policyv1.PodDisruptionBudgetStatus{}, 0
	}
	status := *pdb.Status.DeepCopy()
	status.ObservedGeneration = pdb.Generation

	var expected, desired int32
	switch {
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int:
		expected = int32(len(pods))
		desired = pdb.Spec.MinAvailable.IntVal
	case pdb.Spec.MinAvailable != nil:
		expected = expectedFromControllers(pods, scale)
		v, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(expected), true)
		if err == nil {
			desired = int32(v)
		}
	case pdb.Spec.MaxUnavailable != nil:
		expected = expectedFromControllers(pods, scale)
		v, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(expected), true)
		if err == nil {
			desired = expected - int32(v)
		}
	default:
		expected = int32(len(pods))
	}
	desired = max(desired, 0)

	disrupted, recheck := liveDisruptions(pdb.Status.DisruptedPods, pods, now)
	var healthy int32
	for _, p := range pods {
		if p == nil || p.DeletionTimestamp != nil || !podset.IsReady(p) {
			continue
		}
		if _, evicted := disrupted[p.Name]; evicted {
			continue
		}
		healthy++
	}
	allowed := healthy - desired
	if expected <= 0 || allowed < 0 {
		allowed = 0
	}
	status.ExpectedPods = expected
	status.DesiredHealthy = desired
	status.CurrentHealthy = healthy
	status.DisruptionsAllowed = allowed
	status.DisruptedPods = disrupted

	cond := metav1.Condition{
		Type:               policyv1.DisruptionAllowedCondition,
		Status:             metav1.ConditionTrue,
		Reason:             reasonSufficientPods,
		ObservedGeneration: pdb.Generation,
	}
	if allowed <= 0 {
		cond.Status, cond.Reason = metav1.ConditionFalse, reasonInsufficientPods
	}
	setCondition(&status.Conditions, cond, now)
	return status, recheck
}

// liveDisruptions keeps the disruptedPods entries of pods that still exist,
// have not started terminating and were evicted less than
// DisruptedPodTimeout ago, and returns when the earliest of them expires.
func liveDisruptions(entries map[string]metav1.Time, pods []*corev1.Pod, now time.Time) (map[string]metav1.Time, time.Duration) {
	if len(entries) == 0 {
		return nil, 0
	}
	out := map[string]metav1.Time{}
	var recheck time.Duration
	for _, p := range pods {
		if p == nil || p.DeletionTimestamp != nil {
			continue
		}
		at, ok := entries[p.Name]
		if !ok {
			continue
		}
		expires := at.Add(DisruptedPodTimeout)
		if !expires.After(now) {
			continue
		}
		out[p.Name] = at
		if d := expires.Sub(now); recheck == 0 || d < recheck {
			recheck = d
		}
	}
	if len(out) == 0 {
		return nil, recheck
	}
	return out, recheck
}

// setCondition sets c in conds, keeping the transition time when the
// status did not change.
func setCondition(conds *[]metav1.Condition, c metav1.Condition, now time.Time) {
	if old := meta.FindStatusCondition(*conds, c.Type); old == nil || old.Status != c.Status {
		c.LastTransitionTime = metav1.NewTime(now)
	} else {
		c.LastTransitionTime = old.LastTransitionTime
	}
	meta.SetStatusCondition(conds, c)
}
