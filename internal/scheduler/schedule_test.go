package scheduler

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
)

func TestNumFeasibleNodesToFind(t *testing.T) {
	tests := []struct {
		nodes int
		pct   int32
		want  int
	}{
		{10, 0, 10},
		{100, 0, 100},
		{101, 0, 100}, // 50% = 50, floor 100
		{1000, 0, 420},
		{5000, 0, 500},
		{6000, 0, 300},    // 50-48 = 2% -> floor of 5% = 300
		{100000, 0, 5000}, // 5%
		{5000, 10, 500},
		{5000, 100, 5000},
		{5000, 1, 100},
	}
	for _, tt := range tests {
		if got := numFeasibleNodesToFind(tt.nodes, tt.pct); got != tt.want {
			t.Errorf("numFeasibleNodesToFind(%d, %d) = %d, want %d", tt.nodes, tt.pct, got, tt.want)
		}
	}
}

// TestScheduleSpreadsAndFills places pods one after another as the loop
// does (decide, assume) and checks they spread evenly, then fail with
// upstream's message once the nodes are full.
func TestScheduleSpreadsAndFills(t *testing.T) {
	c := testCache([]*v1.Node{testNode("n0", "2", "8Gi"), testNode("n1", "2", "8Gi"), testNode("n2", "2", "8Gi")})
	a := newAlgorithm(c, 0)
	count := map[string]int{}
	for i := range 12 {
		p := newPodInfo(testPod(fmt.Sprintf("p%d", i), "500m", "1Gi"))
		n, fe := a.schedule(p)
		if n == nil {
			t.Fatalf("pod %d: %v", i, fe)
		}
		c.assumeLocked(p, n.name)
		count[n.name]++
		if i%3 == 2 && (count["n0"] != count["n1"] || count["n1"] != count["n2"]) {
			t.Fatalf("after %d pods: uneven %v", i+1, count)
		}
	}
	_, fe := a.schedule(newPodInfo(testPod("extra", "500m", "1Gi")))
	if fe == nil {
		t.Fatal("13th pod fits on full nodes")
	}
	if got, want := fe.Error(), "0/3 nodes are available: 3 Insufficient cpu."; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	c.Forget("default/p0")
	if n, fe := a.schedule(newPodInfo(testPod("extra", "500m", "1Gi"))); n == nil {
		t.Errorf("no room after forgetting an assumed pod: %v", fe)
	}
}

func TestScheduleNominatedNodeFirst(t *testing.T) {
	c := testCache([]*v1.Node{testNode("n0", "4", "8Gi"), testNode("n1", "4", "8Gi")}, testPod("busy", "3", "", onNode("n1")))
	a := newAlgorithm(c, 0)
	p := newPodInfo(testPod("p", "1", "", func(p *v1.Pod) { p.Status.NominatedNodeName = "n1" }))
	if n, _ := a.schedule(p); n == nil || n.name != "n1" {
		t.Errorf("scheduled to %v, want the nominated n1 (less free but feasible)", n)
	}
}

func TestScheduleRotatesStart(t *testing.T) {
	var nodes []*v1.Node
	for _, name := range nodeNames("n", 1000) {
		nodes = append(nodes, testNode(name, "4", "8Gi"))
	}
	a := newAlgorithm(testCache(nodes), 0)
	for i := range 3 {
		if a.nextStart != i*420%1000 {
			t.Fatalf("decision %d starts at %d, want %d", i, a.nextStart, i*420%1000)
		}
		if n, fe := a.schedule(newPodInfo(testPod("p", "1", ""))); n == nil {
			t.Fatal(fe)
		}
	}
}

// benchmarkSchedule measures the decision path (decide and assume, with
// the cache lock as the loop takes it) at 5,000 nodes. Pods are removed
// again after 50,000 so the cluster stays at a steady fill.
func benchmarkSchedule(b *testing.B, mods ...func(*v1.Pod)) { benchmarkScheduleWith(b, nil, mods...) }

// benchmarkScheduleWith is benchmarkSchedule with prep applied to each
// pod's state (as the loop does per attempt) before its decision.
func benchmarkScheduleWith(b *testing.B, prep func(*podInfo), mods ...func(*v1.Pod)) {
	var nodes []*v1.Node
	for i, name := range nodeNames("node-", 5000) {
		nodes = append(nodes, testNode(name, "32", "128Gi", nodeLabels("topology.kubernetes.io/zone", fmt.Sprintf("zone-%d", i%3))))
	}
	c := testCache(nodes)
	a := newAlgorithm(c, 0)
	pods := make([]*podInfo, 1024)
	for i := range pods {
		pods[i] = newPodInfo(testPod(fmt.Sprintf("p-%d", i), "100m", "128Mi", append([]func(*v1.Pod){withLabels("app", "web")}, mods...)...))
	}
	const window = 50000
	keys := make([]string, window)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p := *pods[i%len(pods)]
		p.key = fmt.Sprintf("default/p-%d", i)
		if prep != nil {
			prep(&p)
		}
		c.mu.Lock()
		if old := keys[i%window]; old != "" {
			c.removeLocked(old)
		}
		n, fe := a.schedule(&p)
		if n == nil {
			c.mu.Unlock()
			b.Fatalf("pod %d: %v", i, fe)
		}
		c.assumeLocked(&p, n.name)
		c.mu.Unlock()
		keys[i%window] = p.key
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pods/s")
}

func BenchmarkSchedule5000Nodes(b *testing.B) { benchmarkSchedule(b) }

func BenchmarkSchedule5000NodesZoneSpread(b *testing.B) {
	benchmarkSchedule(b, withSpread("topology.kubernetes.io/zone", 1, v1.ScheduleAnyway, 0))
}

// BenchmarkSchedule5000NodesDefaultSpread is the common Deployment case:
// no constraints of its own, so the system defaults (hostname and zone)
// over its ReplicaSet's selector, looked up per decision from a lister.
func BenchmarkSchedule5000NodesDefaultSpread(b *testing.B) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	if err := idx.Add(&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}); err != nil {
		b.Fatal(err)
	}
	sel := &spreadSelectors{replicaSets: appslisters.NewReplicaSetLister(idx)}
	benchmarkScheduleWith(b, func(p *podInfo) { p.setDefaultSpread(sel.defaultSelector(p.pod)) }, ownedBy("ReplicaSet", "web"))
}
