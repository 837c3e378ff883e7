package nodelifecycle

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// health is the controller's verdict on one node.
type health int

const (
	// healthPending: the kubelet is alive but has not yet posted a Ready
	// condition; no readiness verdict, no readiness taints change.
	healthPending health = iota
	healthReady
	healthNotReady
	healthUnknown
)

func (h health) String() string {
	return [...]string{"Pending", "Ready", "NotReady", "Unknown"}[h]
}

// nodeState is what nodeHealth found.
type nodeState struct {
	health health
	// stale: the heartbeat is older than the grace period; the
	// controller, not the kubelet, must speak for the node.
	stale bool
	// heartbeat is the node's last sign of life.
	heartbeat time.Time
}

// heartbeat is the latest of the node's Lease renewTime and its Ready
// condition's lastHeartbeatTime. A node that never posted either counts
// from its creation (so that a new node gets one grace period).
func heartbeat(node *corev1.Node, lease *coordinationv1.Lease) time.Time {
	t := node.CreationTimestamp.Time
	if c := condition(node, corev1.NodeReady); c != nil && c.LastHeartbeatTime.After(t) {
		t = c.LastHeartbeatTime.Time
	}
	if lease != nil && lease.Spec.RenewTime != nil && lease.Spec.RenewTime.After(t) {
		t = lease.Spec.RenewTime.Time
	}
	return t
}

// nodeHealth judges a node at now: Unknown once its heartbeat is older
// than grace, else what its Ready condition says.
func nodeHealth(node *corev1.Node, lease *coordinationv1.Lease, now time.Time, grace time.Duration) nodeState {
	hb := heartbeat(node, lease)
	if now.Sub(hb) > grace {
		return nodeState{health: healthUnknown, stale: true, heartbeat: hb}
	}
	s := nodeState{heartbeat: hb}
	switch c := condition(node, corev1.NodeReady); {
	case c == nil:
		s.health = healthPending
	case c.Status == corev1.ConditionTrue:
		s.health = healthReady
	case c.Status == corev1.ConditionFalse:
		s.health = healthNotReady
	default:
		s.health = healthUnknown
	}
	return s
}

func condition(node *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	if node == nil {
		return nil
	}
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == t {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

// kubeletConditions are the conditions the kubelet owns and the controller
// sets to Unknown when the kubelet goes silent (upstream's list).
var kubeletConditions = []corev1.NodeConditionType{
	corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure,
}

// unknownConditions returns the node's conditions with every kubelet
// condition set to Unknown, as upstream does for a silent kubelet, and
// whether anything changed. A condition the kubelet never posted is added
// with reason NodeStatusNeverUpdated.
func unknownConditions(node *corev1.Node, now time.Time) ([]corev1.NodeCondition, bool) {
	out := make([]corev1.NodeCondition, len(node.Status.Conditions))
	copy(out, node.Status.Conditions)
	changed := false
	ts := metav1.NewTime(now)
	for _, t := range kubeletConditions {
		i := -1
		for j := range out {
			if out[j].Type == t {
				i = j
			}
		}
		if i < 0 {
			out = append(out, corev1.NodeCondition{
				Type: t, Status: corev1.ConditionUnknown,
				Reason: "NodeStatusNeverUpdated", Message: "Kubelet never posted node status.",
				LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: ts,
			})
			changed = true
			continue
		}
		if out[i].Status == corev1.ConditionUnknown {
			continue
		}
		out[i].Status = corev1.ConditionUnknown
		out[i].Reason = "NodeStatusUnknown"
		out[i].Message = "Kubelet stopped posting node status."
		out[i].LastTransitionTime = ts
		changed = true
	}
	return out, changed
}
