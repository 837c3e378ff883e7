package replicaset

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-io/skiff/internal/controller/podset"
)

// burstReplicas caps the pods one reconcile creates or deletes (upstream's
// BurstReplicas), so that one huge scale cannot hog a worker; the rest
// follows on the next reconcile, once the informer has seen these.
const burstReplicas = 500

// diff returns how many pods to create or delete to bring active pods to
// want, each capped at burst. At most one of them is non-zero.
func diff(active int, want int32, burst int) (create, del int) {
	d := int(max(want, 0)) - active
	switch {
	case d > 0:
		return min(d, burst), 0
	case d < 0:
		return 0, min(-d, burst)
	}
	return 0, 0
}

// slowStartBatches splits n creations into batches of 1, 2, 4, ... (the
// last one holds the remainder), as upstream's slowStartBatch does: a
// template that cannot be created (quota, admission) fails after one call,
// not after n.
func slowStartBatches(n int) []int {
	var out []int
	for size := 1; n > 0; size *= 2 {
		b := min(size, n)
		out = append(out, b)
		n -= b
	}
	return out
}

// podsToDelete returns the n pods to delete first among pods, ranked by
// podset.RankForDeletion. pods is not reordered.
func podsToDelete(pods []*corev1.Pod, n int) []*corev1.Pod {
	if n <= 0 {
		return nil
	}
	ranked := append([]*corev1.Pod(nil), pods...)
	podset.RankForDeletion(ranked)
	return ranked[:min(n, len(ranked))]
}

// calculateStatus returns rs's status for its active owned pods at now, and
// how long until a Ready pod becomes available (0: nothing to wait for).
// manageErr is the error of this reconcile's creates (create=true) or
// deletes; it sets the ReplicaFailure condition, and its absence clears it.
func calculateStatus(rs *appsv1.ReplicaSet, pods []*corev1.Pod, manageErr error, create bool, now time.Time) (appsv1.ReplicaSetStatus, time.Duration) {
	st := *rs.Status.DeepCopy()
	templateLabels := labels.Set(rs.Spec.Template.Labels).AsSelectorPreValidated()
	var fully, ready, available int32
	var wait time.Duration
	for _, p := range pods {
		if templateLabels.Matches(labels.Set(p.Labels)) {
			fully++
		}
		if podset.IsReady(p) {
			ready++
			if podset.IsAvailable(p, rs.Spec.MinReadySeconds, now) {
				available++
			} else if d := podset.UntilAvailable(p, rs.Spec.MinReadySeconds, now); d > 0 && (wait == 0 || d < wait) {
				wait = d
			}
		}
	}
	st.Replicas = int32(len(pods))
	st.FullyLabeledReplicas = fully
	st.ReadyReplicas = ready
	st.AvailableReplicas = available
	st.ObservedGeneration = rs.Generation

	i := failureCondition(st.Conditions)
	switch {
	case manageErr != nil && i < 0:
		reason := "FailedDelete"
		if create {
			reason = "FailedCreate"
		}
		st.Conditions = append(st.Conditions, appsv1.ReplicaSetCondition{
			Type:               appsv1.ReplicaSetReplicaFailure,
			Status:             corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now),
			Reason:             reason,
			Message:            manageErr.Error(),
		})
	case manageErr == nil && i >= 0:
		st.Conditions = append(st.Conditions[:i:i], st.Conditions[i+1:]...)
		if len(st.Conditions) == 0 {
			st.Conditions = nil
		}
	}
	return st, wait
}

func failureCondition(conds []appsv1.ReplicaSetCondition) int {
	for i, c := range conds {
		if c.Type == appsv1.ReplicaSetReplicaFailure {
			return i
		}
	}
	return -1
}

// keyOf is the "namespace/name" key of a namespaced object.
func keyOf(namespace, name string) string { return fmt.Sprintf("%s/%s", namespace, name) }
