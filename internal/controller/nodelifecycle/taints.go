package nodelifecycle

import (
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	unreachableNoExecute = corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}
	unreachableNoSched   = corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule}
	notReadyNoExecute    = corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}
	notReadyNoSched      = corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}
)

// conditionTaints are the NoSchedule taints a True condition brings
// (upstream's TaintNodesByCondition).
var conditionTaints = map[corev1.NodeConditionType]string{
	corev1.NodeMemoryPressure:     corev1.TaintNodeMemoryPressure,
	corev1.NodeDiskPressure:       corev1.TaintNodeDiskPressure,
	corev1.NodePIDPressure:        corev1.TaintNodePIDPressure,
	corev1.NodeNetworkUnavailable: corev1.TaintNodeNetworkUnavailable,
}

// readinessTaint reports whether t is one of the four readiness taints.
func readinessTaint(t corev1.Taint) bool {
	return (t.Key == corev1.TaintNodeUnreachable || t.Key == corev1.TaintNodeNotReady) &&
		(t.Effect == corev1.TaintEffectNoExecute || t.Effect == corev1.TaintEffectNoSchedule)
}

// managed reports whether the controller owns taint t: it adds and removes
// those, and leaves every other taint alone.
func managed(t corev1.Taint) bool {
	if readinessTaint(t) {
		return true
	}
	if t.Effect != corev1.TaintEffectNoSchedule {
		return false
	}
	if t.Key == corev1.TaintNodeUnschedulable {
		return true
	}
	for _, k := range conditionTaints {
		if t.Key == k {
			return true
		}
	}
	return false
}

// wantedTaints are the managed taints a node in health h should carry:
// unreachable when Unknown, not-ready when NotReady (each NoExecute and
// NoSchedule), a NoSchedule taint per pressure condition that is True,
// and unschedulable when spec.unschedulable. While Pending, the readiness
// taints the node has are kept.
func wantedTaints(node *corev1.Node, h health) []corev1.Taint {
	var out []corev1.Taint
	switch h {
	case healthUnknown:
		out = append(out, unreachableNoExecute, unreachableNoSched)
	case healthNotReady:
		out = append(out, notReadyNoExecute, notReadyNoSched)
	case healthPending:
		for _, t := range node.Spec.Taints {
			if readinessTaint(t) {
				out = append(out, corev1.Taint{Key: t.Key, Effect: t.Effect})
			}
		}
	}
	for _, c := range node.Status.Conditions {
		if k, ok := conditionTaints[c.Type]; ok && c.Status == corev1.ConditionTrue {
			out = append(out, corev1.Taint{Key: k, Effect: corev1.TaintEffectNoSchedule})
		}
	}
	if node.Spec.Unschedulable {
		out = append(out, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
	}
	return out
}

// reconcileTaints returns current with the managed taints replaced by
// wanted, and whether that changes anything. Taints kept keep their
// timeAdded; new NoExecute taints get timeAdded now (NoSchedule ones
// carry none, as upstream).
func reconcileTaints(current, wanted []corev1.Taint, now time.Time) ([]corev1.Taint, bool) {
	same := func(a, b corev1.Taint) bool { return a.Key == b.Key && a.Effect == b.Effect }
	var out []corev1.Taint
	changed := false
	for _, t := range current {
		if managed(t) && !slices.ContainsFunc(wanted, func(w corev1.Taint) bool { return same(w, t) }) {
			changed = true
			continue
		}
		out = append(out, t)
	}
	for _, w := range wanted {
		if slices.ContainsFunc(out, func(t corev1.Taint) bool { return same(w, t) }) {
			continue
		}
		if w.Effect == corev1.TaintEffectNoExecute {
			ts := metav1.NewTime(now)
			w.TimeAdded = &ts
		}
		out = append(out, w)
		changed = true
	}
	return out, changed
}
