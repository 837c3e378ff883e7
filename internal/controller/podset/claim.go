package podset

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// Claim sorts candidate pods for an owner (uid) with selector into those it
// controls (a controller reference to uid), orphans it should adopt
// (matching the selector, no controller reference, not being deleted) and
// pods it controls but should release (no longer matching the selector).
// The caller adopts and releases by patching ownerReferences; an owner being
// deleted adopts nothing.
func Claim(pods []*corev1.Pod, uid types.UID, selector labels.Selector, ownerDeleting bool) (owned, adopt, release []*corev1.Pod) {
	for _, p := range pods {
		ref := metav1.GetControllerOf(p)
		matches := selector.Matches(labels.Set(p.Labels))
		switch {
		case ref != nil && ref.UID == uid:
			if matches {
				owned = append(owned, p)
			} else if p.DeletionTimestamp == nil {
				release = append(release, p)
			}
		case ref == nil && matches && !ownerDeleting && p.DeletionTimestamp == nil:
			adopt = append(adopt, p)
		}
	}
	return owned, adopt, release
}

// RankForDeletion sorts pods so that the ones to delete first come first,
// as upstream's ActivePods ordering does: unassigned before assigned;
// Pending before Unknown before Running; not ready before ready; ready for
// less time before longer; more restarts before fewer; newer before older.
func RankForDeletion(pods []*corev1.Pod) {
	slices.SortStableFunc(pods, func(a, b *corev1.Pod) int {
		if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
			return boolFirst(a.Spec.NodeName == "")
		}
		if pa, pb := phaseRank(a.Status.Phase), phaseRank(b.Status.Phase); pa != pb {
			return pa - pb
		}
		if IsReady(a) != IsReady(b) {
			return boolFirst(!IsReady(a))
		}
		if IsReady(a) && IsReady(b) {
			ta, tb := ReadyCondition(a).LastTransitionTime, ReadyCondition(b).LastTransitionTime
			if !ta.Equal(&tb) {
				return boolFirst(tb.Before(&ta)) // ready more recently first
			}
		}
		if ra, rb := restarts(a), restarts(b); ra != rb {
			return boolFirst(ra > rb)
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return boolFirst(b.CreationTimestamp.Before(&a.CreationTimestamp))
		}
		return 0
	})
}

func boolFirst(aFirst bool) int {
	if aFirst {
		return -1
	}
	return 1
}

func phaseRank(p corev1.PodPhase) int {
	switch p {
	case corev1.PodPending, "":
		return 0
	case corev1.PodUnknown:
		return 1
	case corev1.PodRunning:
		return 2
	}
	return 3
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, c := range p.Status.ContainerStatuses {
		n = max(n, c.RestartCount)
	}
	return n
}
