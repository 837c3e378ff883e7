package daemonset

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// nodeNameField is the only field node affinity matchFields may select on.
const nodeNameField = "metadata.name"

// fit is whether a daemon pod belongs on a node.
type fit struct {
	// shouldRun: the node should have a daemon pod (counted in
	// desiredNumberScheduled; one is created when missing).
	shouldRun bool
	// shouldContinue: a daemon pod already on the node may stay (true for
	// a node whose only objection is an untolerated NoSchedule taint).
	shouldContinue bool
}

// nodeFit judges node against pod (a daemon pod built from the template,
// with the daemon tolerations added): its nodeSelector and required node
// affinity must match, every NoExecute taint must be tolerated, and every
// NoSchedule taint too for the node to get a new pod. A node being deleted
// gets nothing.
func nodeFit(node *corev1.Node, pod *corev1.Pod) fit {
	if node == nil || pod == nil || node.DeletionTimestamp != nil {
		return fit{}
	}
	if !matchesNodeSelector(node, pod.Spec.NodeSelector) || !matchesRequiredAffinity(node, pod.Spec.Affinity) {
		return fit{}
	}
	f := fit{shouldRun: true, shouldContinue: true}
	for i := range node.Spec.Taints {
		taint := &node.Spec.Taints[i]
		if taint.Effect != corev1.TaintEffectNoSchedule && taint.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if tolerated(pod.Spec.Tolerations, taint) {
			continue
		}
		f.shouldRun = false
		if taint.Effect == corev1.TaintEffectNoExecute {
			f.shouldContinue = false
		}
	}
	return f
}

func matchesNodeSelector(node *corev1.Node, sel map[string]string) bool {
	return len(sel) == 0 || labels.SelectorFromSet(sel).Matches(labels.Set(node.Labels))
}

// matchesRequiredAffinity reports whether node satisfies the pod's
// requiredDuringSchedulingIgnoredDuringExecution node affinity: any one
// term, whose expressions and fields must all match. No terms matches no
// node, as upstream.
func matchesRequiredAffinity(node *corev1.Node, aff *corev1.Affinity) bool {
	if aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	for _, term := range aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
			continue
		}
		if matchRequirements(term.MatchExpressions, labels.Set(node.Labels)) &&
			matchRequirements(term.MatchFields, labels.Set{nodeNameField: node.Name}) {
			return true
		}
	}
	return false
}

func matchRequirements(reqs []corev1.NodeSelectorRequirement, set labels.Set) bool {
	for _, r := range reqs {
		var op selection.Operator
		switch r.Operator {
		case corev1.NodeSelectorOpIn:
			op = selection.In
		case corev1.NodeSelectorOpNotIn:
			op = selection.NotIn
		case corev1.NodeSelectorOpExists:
			op = selection.Exists
		case corev1.NodeSelectorOpDoesNotExist:
			op = selection.DoesNotExist
		case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
			if len(r.Values) != 1 {
				return false
			}
			want, err1 := strconv.ParseInt(r.Values[0], 10, 64)
			have, err2 := strconv.ParseInt(set[r.Key], 10, 64)
			if !set.Has(r.Key) || err1 != nil || err2 != nil {
				return false
			}
			if (r.Operator == corev1.NodeSelectorOpGt && have <= want) || (r.Operator == corev1.NodeSelectorOpLt && have >= want) {
				return false
			}
			continue
		default:
			return false
		}
		req, err := labels.NewRequirement(r.Key, op, r.Values)
		if err != nil || !req.Matches(set) {
			return false
		}
	}
	return true
}

// tolerated reports whether any toleration tolerates taint: same key (an
// empty key with Exists tolerates every key), same effect (empty: any),
// and Exists, or Equal (the default) with the same value.
func tolerated(tols []corev1.Toleration, taint *corev1.Taint) bool {
	for _, t := range tols {
		if t.Effect != "" && t.Effect != taint.Effect {
			continue
		}
		if t.Key != "" && t.Key != taint.Key {
			continue
		}
		switch t.Operator {
		case corev1.TolerationOpExists:
			return true
		case corev1.TolerationOpEqual, "":
			if t.Key != "" && t.Value == taint.Value {
				return true
			}
		}
	}
	return false
}

// daemonTolerations are the tolerations every daemon pod gets, as
// upstream adds them: daemons keep running on nodes that are not ready,
// unreachable, under resource pressure or cordoned.
var daemonTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

// addDaemonTolerations adds the daemon tolerations the spec lacks (and
// network-unavailable for a hostNetwork pod).
func addDaemonTolerations(spec *corev1.PodSpec) {
	add := func(t corev1.Toleration) {
		for _, have := range spec.Tolerations {
			if have.Key == t.Key && have.Effect == t.Effect && have.Operator == t.Operator {
				return
			}
		}
		spec.Tolerations = append(spec.Tolerations, t)
	}
	for _, t := range daemonTolerations {
		add(t)
	}
	if spec.HostNetwork {
		add(corev1.Toleration{Key: corev1.TaintNodeNetworkUnavailable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})
	}
}

// pinToNode makes the scheduler place the pod on node, as upstream does
// for daemon pods: the required node affinity becomes the single term
// matchFields metadata.name In [node] (the node was already judged against
// the template's own terms), leaving preferred terms alone.
func pinToNode(spec *corev1.PodSpec, node string) {
	if spec.Affinity == nil {
		spec.Affinity = &corev1.Affinity{}
	}
	if spec.Affinity.NodeAffinity == nil {
		spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{
			Key: nodeNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node},
		}}}},
	}
}

// podNode returns the node a daemon pod is for: spec.nodeName once
// scheduled, else the node its metadata.name affinity pins it to.
func podNode(p *corev1.Pod) string {
	if p.Spec.NodeName != "" {
		return p.Spec.NodeName
	}
	a := p.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, f := range term.MatchFields {
			if f.Key == nodeNameField && f.Operator == corev1.NodeSelectorOpIn && len(f.Values) == 1 {
				return f.Values[0]
			}
		}
	}
	return ""
}
