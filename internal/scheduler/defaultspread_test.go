package scheduler

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func ownedBy(kind, name string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		yes := true
		p.OwnerReferences = append(p.OwnerReferences, metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: &yes})
	}
}

func testSpreadSelectors(t *testing.T, objs ...any) *spreadSelectors {
	t.Helper()
	idx := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	svcs, rss, sss, rcs := idx(), idx(), idx(), idx()
	for _, o := range objs {
		var err error
		switch o.(type) {
		case *v1.Service:
			err = svcs.Add(o)
		case *appsv1.ReplicaSet:
			err = rss.Add(o)
		case *appsv1.StatefulSet:
			err = sss.Add(o)
		case *v1.ReplicationController:
			err = rcs.Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return &spreadSelectors{services: corelisters.NewServiceLister(svcs), replicaSets: appslisters.NewReplicaSetLister(rss),
		statefulSets: appslisters.NewStatefulSetLister(sss), replicationControllers: corelisters.NewReplicationControllerLister(rcs)}
}

func service(ns, name string, sel map[string]string) *v1.Service {
	return &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.ServiceSpec{Selector: sel}}
}

func replicaSet(name string, sel *metav1.LabelSelector) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Spec: appsv1.ReplicaSetSpec{Selector: sel}}
}

func TestDefaultSelector(t *testing.T) {
	webLabels := withLabels("app", "web", "tier", "fe", "pod-template-hash", "abc")
	rs := replicaSet("web-abc", &metav1.LabelSelector{
		MatchLabels:      map[string]string{"app": "web", "pod-template-hash": "abc"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"fe", "be"}}},
	})
	ss := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"},
		Spec: appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}
	tests := []struct {
		name string
		objs []any
		pod  *v1.Pod
		want string // the selector; "" for no default constraints
	}{
		{"service and replicaset merged",
			[]any{service("default", "web", map[string]string{"app": "web"}), service("default", "fe", map[string]string{"tier": "fe"}), rs},
			testPod("p", "", "", webLabels, ownedBy("ReplicaSet", "web-abc")),
			"app=web,pod-template-hash=abc,tier=fe,tier in (be,fe)"},
		{"replicaset only", []any{rs},
			testPod("p", "", "", webLabels, ownedBy("ReplicaSet", "web-abc")),
			"app=web,pod-template-hash=abc,tier in (be,fe)"},
		{"service only", []any{service("default", "web", map[string]string{"app": "web"})},
			testPod("p", "", "", webLabels), "app=web"},
		{"statefulset", []any{ss},
			testPod("p", "", "", withLabels("app", "db"), ownedBy("StatefulSet", "db")), "app=db"},
		{"replicationcontroller and service merged",
			[]any{service("default", "web", map[string]string{"app": "web"}), &v1.ReplicationController{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "legacy"},
				Spec:       v1.ReplicationControllerSpec{Selector: map[string]string{"app": "web", "tier": "fe"}}}},
			testPod("p", "", "", webLabels, func(p *v1.Pod) {
				yes := true
				p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ReplicationController", Name: "legacy", Controller: &yes}}
			}),
			"app=web,tier=fe"},
		{"nothing selects the pod",
			[]any{service("default", "other", map[string]string{"app": "other"}), service("other-ns", "web", map[string]string{"app": "web"}), service("default", "headless", nil), rs},
			testPod("p", "", "", webLabels), ""},
		{"owner not in the lister", nil,
			testPod("p", "", "", webLabels, ownedBy("ReplicaSet", "gone")), ""},
		{"owner of an unserved kind", []any{rs},
			testPod("p", "", "", webLabels, ownedBy("Deployment", "web-abc")), ""},
		{"not the controller", []any{rs},
			testPod("p", "", "", webLabels, func(p *v1.Pod) {
				p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-abc"}}
			}), ""},
		{"own constraints win", []any{service("default", "web", map[string]string{"app": "web"}), rs},
			testPod("p", "", "", webLabels, ownedBy("ReplicaSet", "web-abc"), withSpread("zone", 1, v1.DoNotSchedule, 0)), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPodInfo(tt.pod)
			p.setDefaultSpread(testSpreadSelectors(t, tt.objs...).defaultSelector(tt.pod))
			if tt.want == "" {
				if p.spreadDefaulted || (len(tt.pod.Spec.TopologySpreadConstraints) == 0 && len(p.softSpread) > 0) {
					t.Fatalf("got default constraints %+v, want none", p.softSpread)
				}
				return
			}
			if !p.spreadDefaulted || len(p.softSpread) != 2 {
				t.Fatalf("softSpread %+v, want the two system defaults", p.softSpread)
			}
			for i, want := range []struct {
				key  string
				skew int64
			}{{"kubernetes.io/hostname", 3}, {"topology.kubernetes.io/zone", 5}} {
				c := p.softSpread[i]
				if c.key != want.key || c.maxSkew != want.skew || c.selector.String() != tt.want || c.selfMatch != 1 || !c.honorAffinity || c.honorTaints {
					t.Errorf("constraint %d = {key %q skew %d selector %q self %d}, want {key %q skew %d selector %q self 1}",
						i, c.key, c.maxSkew, c.selector.String(), c.selfMatch, want.key, want.skew, tt.want)
				}
			}
			if len(p.hardSpread) != 0 {
				t.Errorf("defaults must never filter, got hard constraints %+v", p.hardSpread)
			}
		})
	}
}

func TestDefaultSpreadScore(t *testing.T) {
	web := func(name, node string) *v1.Pod { return testPod(name, "", "", onNode(node), withLabels("app", "web")) }
	existing := []*v1.Pod{web("w1", "n1"), web("w2", "n1"), web("w3", "n1"), web("w4", "n2"),
		testPod("other", "", "", onNode("n3"), withLabels("app", "other"))}
	tests := []struct {
		name      string
		nodes     []*v1.Node
		wantKeys  int
		wantOrder []string // best first; equal neighbours joined by "="
	}{
		{"no zones: hostname only", []*v1.Node{testNode("n1", "4", "8Gi"), testNode("n2", "4", "8Gi"), testNode("n3", "4", "8Gi")},
			1, []string{"n3", "n2", "n1"}},
		{"zones count too", []*v1.Node{
			testNode("n1", "4", "8Gi", nodeLabels("topology.kubernetes.io/zone", "a")),
			testNode("n2", "4", "8Gi", nodeLabels("topology.kubernetes.io/zone", "b")),
			testNode("n3", "4", "8Gi", nodeLabels("topology.kubernetes.io/zone", "a")),
			testNode("n4", "4", "8Gi", nodeLabels("topology.kubernetes.io/zone", "b")),
		}, 2, []string{"n4", "n2", "n3", "n1"}}, // n2 (1 pod, zone b) beats n3 (0 pods, zone a: 3)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCache(tt.nodes, existing...)
			p := newPodInfo(testPod("p", "", "", withLabels("app", "web")))
			p.setDefaultSpread(testSpreadSelectors(t, service("default", "web", map[string]string{"app": "web"})).defaultSelector(p.pod))
			s := newSpreadScorer(c, p, c.list)
			if s == nil || len(s.constraints) != tt.wantKeys {
				t.Fatalf("scorer %+v, want %d constraints", s, tt.wantKeys)
			}
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
			for i := 1; i < len(tt.wantOrder); i++ {
				if got[tt.wantOrder[i-1]] <= got[tt.wantOrder[i]] {
					t.Errorf("scores %v: want %s > %s", got, tt.wantOrder[i-1], tt.wantOrder[i])
				}
			}
		})
	}
}

// TestDefaultSpreadPlacement is the case defaults exist for: pods without
// requests on equal nodes so large that the resource scores tie after
// integer rounding (ties break at random), and only the default spread
// makes the placement even: 4, 3, 3. Without it this fails about 4 times
// in 5.
func TestDefaultSpreadPlacement(t *testing.T) {
	nodes := []*v1.Node{testNode("n0", "256", "1Ti"), testNode("n1", "256", "1Ti"), testNode("n2", "256", "1Ti")}
	c := testCache(nodes)
	a := newAlgorithm(c, 0)
	sel := testSpreadSelectors(t, replicaSet("web-abc", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}))
	per := map[string]int{}
	for i := range 10 {
		pod := testPod(fmt.Sprintf("web-%d", i), "", "", withLabels("app", "web"), ownedBy("ReplicaSet", "web-abc"))
		pod.Spec.Containers[0].Resources = v1.ResourceRequirements{}
		p := newPodInfo(pod)
		p.setDefaultSpread(sel.defaultSelector(pod))
		c.mu.Lock()
		n, fe := a.schedule(p)
		if n == nil {
			c.mu.Unlock()
			t.Fatal(fe)
		}
		c.assumeLocked(p, n.name)
		c.mu.Unlock()
		per[n.name]++
	}
	for _, n := range nodes {
		if per[n.Name] < 3 || per[n.Name] > 4 {
			t.Fatalf("pods per node %v, want 3 or 4 on each", per)
		}
	}
}
