package scheduler

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func withSpread(key string, maxSkew int32, when v1.UnsatisfiableConstraintAction, minDomains int32) func(*v1.Pod) {
	return func(p *v1.Pod) {
		c := v1.TopologySpreadConstraint{MaxSkew: maxSkew, TopologyKey: key, WhenUnsatisfiable: when,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}
		if minDomains > 0 {
			c.MinDomains = &minDomains
		}
		p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, c)
	}
}

func TestTopologySpreadFilter(t *testing.T) {
	nodes := []*v1.Node{
		testNode("a1", "4", "8Gi", nodeLabels("zone", "a")),
		testNode("a2", "4", "8Gi", nodeLabels("zone", "a")),
		testNode("b1", "4", "8Gi", nodeLabels("zone", "b")),
		testNode("nolabel", "4", "8Gi"),
	}
	web := func(name, node string) *v1.Pod { return testPod(name, "", "", onNode(node), withLabels("app", "web")) }
	tests := []struct {
		name     string
		existing []*v1.Pod
		pod      *v1.Pod
		want     map[string]*status
	}{
		{"balanced zones", []*v1.Pod{web("w1", "a1"), web("w2", "b1")},
			testPod("p", "", "", withLabels("app", "web"), withSpread("zone", 1, v1.DoNotSchedule, 0)),
			map[string]*status{"a1": nil, "a2": nil, "b1": nil, "nolabel": statusSpreadNoLabel}},
		{"zone a ahead", []*v1.Pod{web("w1", "a1"), web("w2", "a2")},
			testPod("p", "", "", withLabels("app", "web"), withSpread("zone", 1, v1.DoNotSchedule, 0)),
			map[string]*status{"a1": statusSpread, "a2": statusSpread, "b1": nil, "nolabel": statusSpreadNoLabel}},
		{"maxSkew 2 allows one more", []*v1.Pod{web("w1", "a1")},
			testPod("p", "", "", withLabels("app", "web"), withSpread("zone", 2, v1.DoNotSchedule, 0)),
			map[string]*status{"a1": nil, "a2": nil, "b1": nil, "nolabel": statusSpreadNoLabel}},
		{"pod not matching its selector", []*v1.Pod{web("w1", "a1")},
			testPod("p", "", "", withSpread("zone", 1, v1.DoNotSchedule, 0)),
			map[string]*status{"a1": nil, "a2": nil, "b1": nil, "nolabel": statusSpreadNoLabel}},
		{"minDomains above domain count", []*v1.Pod{web("w1", "b1")},
			testPod("p", "", "", withLabels("app", "web"), withSpread("zone", 1, v1.DoNotSchedule, 3)),
			map[string]*status{"a1": nil, "a2": nil, "b1": statusSpread, "nolabel": statusSpreadNoLabel}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCache(nodes, tt.existing...)
			p := newPodInfo(tt.pod)
			f := newSpreadFilter(c, p)
			got := map[string]*status{}
			for _, n := range c.list {
				got[n.name] = f.filter(n)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(status{})); diff != "" {
				t.Errorf("filter (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTopologySpreadScore(t *testing.T) {
	nodes := []*v1.Node{
		testNode("a1", "4", "8Gi"),
		testNode("a2", "4", "8Gi"),
		testNode("a3", "4", "8Gi"),
	}
	web := func(name, node string) *v1.Pod { return testPod(name, "", "", onNode(node), withLabels("app", "web")) }
	c := testCache(nodes, web("w1", "a1"), web("w2", "a1"), web("w3", "a2"))
	p := newPodInfo(testPod("p", "", "", withLabels("app", "web"), withSpread("kubernetes.io/hostname", 1, v1.ScheduleAnyway, 0)))
	s := newSpreadScorer(c, p, c.list)
	scores := make([]int64, len(c.list))
	ok := make([]bool, len(c.list))
	for i, n := range c.list {
		scores[i], ok[i] = s.score(n)
	}
	normalizeSpread(scores, ok)
	got := map[string]int64{}
	for i, n := range c.list {
		got[n.name] = scores[i]
	}
	if !(got["a3"] > got["a2"] && got["a2"] > got["a1"]) || got["a3"] != maxNodeScore {
		t.Errorf("scores %v: want a3 (no pods) = 100 > a2 (1 pod) > a1 (2 pods)", got)
	}
}
