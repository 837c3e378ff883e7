package podnet

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestRouteChanged: heartbeats (status conditions, timestamps) do not
// call for a sync; a podCIDR or InternalIP appearing or changing does.
func TestRouteChanged(t *testing.T) {
	node := func(cidr, ip string) *corev1.Node {
		n := &corev1.Node{Spec: corev1.NodeSpec{PodCIDR: cidr}}
		if ip != "" {
			n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
		}
		return n
	}
	heartbeat := node("10.42.1.0/24", "10.0.0.2")
	heartbeat.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	for _, tc := range []struct {
		name     string
		old, cur *corev1.Node
		want     bool
	}{
		{"heartbeat", node("10.42.1.0/24", "10.0.0.2"), heartbeat, false},
		{"podCIDR assigned", node("", "10.0.0.2"), node("10.42.1.0/24", "10.0.0.2"), true},
		{"address changed", node("10.42.1.0/24", "10.0.0.2"), node("10.42.1.0/24", "10.0.0.3"), true},
		{"podCIDR changed", node("10.42.1.0/24", "10.0.0.2"), node("10.42.2.0/24", "10.0.0.2"), true},
		{"still nothing to route", node("", ""), node("", "10.0.0.2"), false},
	} {
		if got := routeChanged(tc.old, tc.cur); got != tc.want {
			t.Errorf("%s: routeChanged = %v, want %v", tc.name, got, tc.want)
		}
	}
}
