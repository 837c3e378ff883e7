package scheduler

import (
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
)

func TestPreemption(t *testing.T) {
	never := v1.PreemptNever
	nodes := []*v1.Node{testNode("n1", "4", "8Gi"), testNode("n2", "4", "8Gi")}
	tests := []struct {
		name        string
		nodes       []*v1.Node
		existing    []*v1.Pod
		pod         *v1.Pod
		wantNode    string
		wantVictims []string
		wantMsg     string
	}{
		{"lowest priority victim wins", nodes, []*v1.Pod{
			testPod("n1-mid", "3", "", onNode("n1"), withPriority(50)),
			testPod("n2-low", "3", "", onNode("n2"), withPriority(10)),
		}, testPod("p", "2", "", withPriority(100)), "n2", []string{"default/n2-low"}, ""},
		{"fewest victims on equal priority", nodes, []*v1.Pod{
			testPod("n1-a", "2", "", onNode("n1"), withPriority(10)),
			testPod("n1-b", "2", "", onNode("n1"), withPriority(10)),
			testPod("n2-a", "1", "", onNode("n2"), withPriority(10)),
			testPod("n2-b", "3", "", onNode("n2"), withPriority(10)),
		}, testPod("p", "3", "", withPriority(100)), "n2", []string{"default/n2-b"}, ""},
		{"reprieve keeps what still fits", []*v1.Node{testNode("n1", "4", "8Gi")}, []*v1.Pod{
			testPod("small", "1", "", onNode("n1"), withPriority(20)),
			testPod("big", "3", "", onNode("n1"), withPriority(10)),
		}, testPod("p", "2", "", withPriority(100)), "n1", []string{"default/big"}, ""},
		{"no lower priority pods", nodes, []*v1.Pod{
			testPod("n1-a", "4", "", onNode("n1"), withPriority(100)),
			testPod("n2-a", "4", "", onNode("n2"), withPriority(200)),
		}, testPod("p", "1", "", withPriority(100)), "", nil,
			"preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."},
		{"unresolvable nodes", []*v1.Node{testNode("n1", "4", "8Gi", func(n *v1.Node) { n.Spec.Unschedulable = true }), testNode("n2", "4", "8Gi")}, []*v1.Pod{
			testPod("n2-a", "4", "", onNode("n2"), withPriority(100)),
		}, testPod("p", "1", "", withPriority(100)), "", nil,
			"preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."},
		{"preemptionPolicy Never", nodes, []*v1.Pod{
			testPod("n1-a", "4", "", onNode("n1")), testPod("n2-a", "4", "", onNode("n2")),
		}, testPod("p", "1", "", withPriority(100), func(p *v1.Pod) { p.Spec.PreemptionPolicy = &never }), "", nil,
			"preemption: not eligible due to preemptionPolicy=Never."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCache(tt.nodes, tt.existing...)
			a := newAlgorithm(c, 0)
			p := newPodInfo(tt.pod)
			n, fe := a.schedule(p)
			if n != nil {
				t.Fatalf("pod fits on %s without preemption", n.name)
			}
			pre, msg := a.preempt(p, fe)
			var gotNode string
			var gotVictims []string
			if pre != nil {
				gotNode = pre.node.name
				for _, v := range pre.victims {
					gotVictims = append(gotVictims, v.key)
				}
				sort.Strings(gotVictims)
			}
			if gotNode != tt.wantNode || msg != tt.wantMsg {
				t.Errorf("node %q msg %q, want %q %q", gotNode, msg, tt.wantNode, tt.wantMsg)
			}
			if diff := cmp.Diff(tt.wantVictims, gotVictims); diff != "" {
				t.Errorf("victims (-want +got):\n%s", diff)
			}
		})
	}
}
