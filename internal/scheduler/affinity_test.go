package scheduler

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func podAffinityTerm(key string, app string) v1.PodAffinityTerm {
	return v1.PodAffinityTerm{TopologyKey: key, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}}
}

func withAntiAffinity(terms ...v1.PodAffinityTerm) func(*v1.Pod) {
	return func(p *v1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &v1.Affinity{}
		}
		p.Spec.Affinity.PodAntiAffinity = &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}
	}
}

func withPodAffinity(terms ...v1.PodAffinityTerm) func(*v1.Pod) {
	return func(p *v1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &v1.Affinity{}
		}
		p.Spec.Affinity.PodAffinity = &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}
	}
}

// TestInterPodAffinityFilter runs the filter over three nodes in two
// zones: a1 and a2 in zone a, b1 in zone b.
func TestInterPodAffinityFilter(t *testing.T) {
	nodes := []*v1.Node{
		testNode("a1", "4", "8Gi", nodeLabels("zone", "a")),
		testNode("a2", "4", "8Gi", nodeLabels("zone", "a")),
		testNode("b1", "4", "8Gi", nodeLabels("zone", "b")),
	}
	hostname := "kubernetes.io/hostname"
	tests := []struct {
		name     string
		existing []*v1.Pod
		pod      *v1.Pod
		want     map[string]*status
	}{
		{"no terms anywhere", []*v1.Pod{testPod("db", "", "", onNode("a1"), withLabels("app", "db"))}, testPod("p", "", ""),
			map[string]*status{"a1": nil, "a2": nil, "b1": nil}},
		{"anti-affinity per host", []*v1.Pod{testPod("web1", "", "", onNode("a1"), withLabels("app", "web"))},
			testPod("p", "", "", withLabels("app", "web"), withAntiAffinity(podAffinityTerm(hostname, "web"))),
			map[string]*status{"a1": statusAntiAffinity, "a2": nil, "b1": nil}},
		{"anti-affinity per zone", []*v1.Pod{testPod("web1", "", "", onNode("a1"), withLabels("app", "web"))},
			testPod("p", "", "", withAntiAffinity(podAffinityTerm("zone", "web"))),
			map[string]*status{"a1": statusAntiAffinity, "a2": statusAntiAffinity, "b1": nil}},
		{"anti-affinity other namespace does not count", []*v1.Pod{testPod("web1", "", "", onNode("a1"), withLabels("app", "web"), func(p *v1.Pod) { p.Namespace = "other" })},
			testPod("p", "", "", withAntiAffinity(podAffinityTerm("zone", "web"))),
			map[string]*status{"a1": nil, "a2": nil, "b1": nil}},
		{"existing pod's anti-affinity", []*v1.Pod{testPod("web1", "", "", onNode("b1"), withAntiAffinity(podAffinityTerm("zone", "web")))},
			testPod("p", "", "", withLabels("app", "web")),
			map[string]*status{"a1": nil, "a2": nil, "b1": statusExistingAnti}},
		{"affinity to zone", []*v1.Pod{testPod("db", "", "", onNode("b1"), withLabels("app", "db"))},
			testPod("p", "", "", withPodAffinity(podAffinityTerm("zone", "db"))),
			map[string]*status{"a1": statusAffinity, "a2": statusAffinity, "b1": nil}},
		{"affinity with no match anywhere", nil, testPod("p", "", "", withPodAffinity(podAffinityTerm("zone", "db"))),
			map[string]*status{"a1": statusAffinity, "a2": statusAffinity, "b1": statusAffinity}},
		{"first pod of a self-affine group", nil, testPod("p", "", "", withLabels("app", "db"), withPodAffinity(podAffinityTerm("zone", "db"))),
			map[string]*status{"a1": nil, "a2": nil, "b1": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCache(nodes, tt.existing...)
			p := newPodInfo(tt.pod)
			s := newAffinityState(p, c)
			got := map[string]*status{}
			for _, n := range c.list {
				got[n.name] = nil
				if s != nil {
					got[n.name] = s.filter(n)
				}
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(status{})); diff != "" {
				t.Errorf("filter (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInterPodAffinityScore(t *testing.T) {
	nodes := []*v1.Node{
		testNode("a1", "4", "8Gi", nodeLabels("zone", "a")),
		testNode("b1", "4", "8Gi", nodeLabels("zone", "b")),
		testNode("c1", "4", "8Gi", nodeLabels("zone", "c")),
	}
	c := testCache(nodes, testPod("db", "", "", onNode("a1"), withLabels("app", "db")), testPod("cache", "", "", onNode("b1"), withLabels("app", "cache")))
	p := newPodInfo(testPod("p", "", "", func(p *v1.Pod) {
		p.Spec.Affinity = &v1.Affinity{
			PodAffinity:     &v1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{{Weight: 10, PodAffinityTerm: podAffinityTerm("zone", "db")}}},
			PodAntiAffinity: &v1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{{Weight: 5, PodAffinityTerm: podAffinityTerm("zone", "cache")}}},
		}
	}))
	s := newAffinityScores(p, c)
	got := map[string]int64{}
	scores := make([]int64, len(c.list))
	for i, n := range c.list {
		scores[i] = s.score(n)
	}
	normalizeMinMax(scores)
	for i, n := range c.list {
		got[n.name] = scores[i]
	}
	// raw: a1 +10, b1 -5, c1 0 -> (s+5)*100/15
	want := map[string]int64{"a1": 100, "b1": 0, "c1": 33}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scores (-want +got):\n%s", diff)
	}
}
