package scheduler

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
)

func TestResourceScores(t *testing.T) {
	tests := []struct {
		name         string
		node         *v1.Node
		existing     []*v1.Pod
		pod          *v1.Pod
		wantLeast    int64
		wantBalanced int64
	}{
		// cpu free (4000-1000)/4000 = 75, memory free (8-2)/8 = 75.
		{"empty node", testNode("n", "4", "8Gi"), nil, testPod("p", "1", "2Gi"), 75, 100},
		// cpu (4000-3000)/4000 = 25, memory 75 -> 50; shares .75 and .25 -> 1-.25 = 75.
		{"cpu heavy", testNode("n", "4", "8Gi"), []*v1.Pod{testPod("a", "2", "0", onNode("n"))}, testPod("p", "1", "2Gi"), 50, 75},
		// no requests: scored as 100m and 200Mi; balanced sees zero shares.
		{"best effort pod", testNode("n", "1", "1000Mi"), nil, testPod("p", "", ""), (90 + 80) / 2, 100},
		{"over capacity", testNode("n", "1", "1Gi"), nil, testPod("p", "2", "2Gi"), 0, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, n := newPodInfo(tt.pod), nodeInfoOf(tt.node, tt.existing...)
			if got := leastAllocated(p, n); got != tt.wantLeast {
				t.Errorf("leastAllocated = %d, want %d", got, tt.wantLeast)
			}
			if got := balancedAllocation(p, n); got != tt.wantBalanced {
				t.Errorf("balancedAllocation = %d, want %d", got, tt.wantBalanced)
			}
		})
	}
}

func TestTaintAndNodeAffinityScores(t *testing.T) {
	soft := func(keys ...string) func(*v1.Node) {
		return func(n *v1.Node) {
			for _, k := range keys {
				n.Spec.Taints = append(n.Spec.Taints, v1.Taint{Key: k, Effect: v1.TaintEffectPreferNoSchedule})
			}
		}
	}
	nodes := []*nodeInfo{
		nodeInfoOf(testNode("n0", "4", "8Gi", nodeLabels("disk", "ssd"))),
		nodeInfoOf(testNode("n1", "4", "8Gi", soft("a"))),
		nodeInfoOf(testNode("n2", "4", "8Gi", soft("a", "b"), nodeLabels("disk", "ssd", "gpu", "yes"))),
	}
	p := newPodInfo(testPod("p", "", "", func(p *v1.Pod) {
		p.Spec.Tolerations = []v1.Toleration{{Key: "b", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectPreferNoSchedule}}
		p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.PreferredSchedulingTerm{
			{Weight: 30, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "disk", Operator: v1.NodeSelectorOpIn, Values: []string{"ssd"}}}}},
			{Weight: 10, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "gpu", Operator: v1.NodeSelectorOpExists}}}},
		}}}
	}))
	var taints, affinity []int64
	for _, n := range nodes {
		taints = append(taints, intolerableSoftTaints(p, n))
		affinity = append(affinity, preferredNodeAffinity(p, n))
	}
	if diff := cmp.Diff([]int64{0, 1, 1}, taints); diff != "" {
		t.Errorf("raw taint counts (-want +got):\n%s", diff)
	}
	normalizeMax(taints, true)
	if diff := cmp.Diff([]int64{100, 0, 0}, taints); diff != "" {
		t.Errorf("normalised taint scores (-want +got):\n%s", diff)
	}
	normalizeMax(affinity, false)
	if diff := cmp.Diff([]int64{75, 0, 100}, affinity); diff != "" {
		t.Errorf("normalised node affinity scores (-want +got):\n%s", diff)
	}
}
