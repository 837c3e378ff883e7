package kubelet

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The reason and message of a pod failed for its activeDeadlineSeconds,
// upstream's words (clients and tests match them).
const (
	deadlineReason  = "DeadlineExceeded"
	deadlineMessage = "Pod was active on the node longer than the specified deadline"
)

// deadlineLeft is how long pod may still run under spec.activeDeadlineSeconds,
// counted from start (status.startTime): negative or zero once the deadline
// has passed. ok is false when the pod has no deadline or no start time yet.
// A lowered deadline (the field may be updated) applies at once.
func deadlineLeft(pod *corev1.Pod, start time.Time, now time.Time) (left time.Duration, ok bool) {
	if pod.Spec.ActiveDeadlineSeconds == nil || start.IsZero() {
		return 0, false
	}
	return start.Add(time.Duration(*pod.Spec.ActiveDeadlineSeconds) * time.Second).Sub(now), true
}

// pastDeadline reports whether pod, started at start, has run past its
// activeDeadlineSeconds at now.
func pastDeadline(pod *corev1.Pod, start *metav1.Time, now time.Time) bool {
	if start == nil {
		return false
	}
	left, ok := deadlineLeft(pod, start.Time, now)
	return ok && left <= 0
}

// startTime is when the deadline counts from: status.startTime, else when
// this kubelet first saw the pod (the first status write sets startTime
// from it).
func (k *Kubelet) startTime(pod *corev1.Pod) time.Time {
	if pod.Status.StartTime != nil {
		return pod.Status.StartTime.Time
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.firstSeen[pod.UID]
}
