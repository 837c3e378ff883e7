package scheduler

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestCacheAssumeConfirmForget(t *testing.T) {
	c := testCache([]*v1.Node{testNode("n1", "4", "8Gi")})
	n := c.nodes["n1"]
	p := newPodInfo(testPod("p", "1", "1Gi"))
	c.mu.Lock()
	c.assumeLocked(p, "n1")
	c.mu.Unlock()
	if n.requested.milliCPU != 1000 || len(n.pods) != 1 {
		t.Fatalf("after assume: cpu %d pods %d", n.requested.milliCPU, len(n.pods))
	}
	// The informer confirms the binding: still counted once, no longer assumed.
	c.SetPod(testPod("p", "1", "1Gi", onNode("n1")))
	if n.requested.milliCPU != 1000 || len(n.pods) != 1 || c.pods["default/p"].assumed {
		t.Fatalf("after confirm: cpu %d pods %d assumed %v", n.requested.milliCPU, len(n.pods), c.pods["default/p"].assumed)
	}
	// Forget leaves a confirmed pod alone.
	c.Forget("default/p")
	if len(n.pods) != 1 {
		t.Fatal("Forget dropped a confirmed pod")
	}
	q := newPodInfo(testPod("q", "2", ""))
	c.mu.Lock()
	c.assumeLocked(q, "n1")
	c.mu.Unlock()
	c.Forget("default/q")
	if n.requested.milliCPU != 1000 || len(n.pods) != 1 {
		t.Fatalf("after forget: cpu %d pods %d", n.requested.milliCPU, len(n.pods))
	}
}

func TestCacheNodeRemovalKeepsPods(t *testing.T) {
	c := testCache([]*v1.Node{testNode("n1", "4", "8Gi"), testNode("n2", "4", "8Gi")}, testPod("p", "1", "", onNode("n1")))
	c.RemoveNode("n1")
	if len(c.list) != 1 || c.list[0].name != "n2" || c.list[0].index != 0 {
		t.Fatalf("node list after removal: %d nodes", len(c.list))
	}
	if n := c.nodes["n1"]; n == nil || n.node != nil || len(n.pods) != 1 {
		t.Fatal("pods of a removed node not kept on a placeholder")
	}
	c.SetNode(testNode("n1", "4", "8Gi"))
	if n := c.nodes["n1"]; n.requested.milliCPU != 1000 || n.index < 0 {
		t.Fatalf("re-added node lost its pods or is not listed: cpu %d index %d", n.requested.milliCPU, n.index)
	}
	c.RemovePod("default/p")
	c.RemoveNode("n1")
	if _, ok := c.nodes["n1"]; ok {
		t.Error("empty removed node still cached")
	}
}

func TestMatchIndexFollowsPods(t *testing.T) {
	c := testCache([]*v1.Node{testNode("n1", "4", "8Gi")}, testPod("a", "", "", onNode("n1"), withLabels("app", "web")))
	sel := compileSpread(testPod("x", "", ""), &v1.TopologySpreadConstraint{MaxSkew: 1, TopologyKey: "zone",
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}).selector
	c.mu.Lock()
	m := c.matchIndexLocked("default", sel)
	c.mu.Unlock()
	n := c.nodes["n1"]
	if m.perNode[n] != 1 {
		t.Fatalf("initial count %d, want 1", m.perNode[n])
	}
	c.SetPod(testPod("b", "", "", onNode("n1"), withLabels("app", "web")))
	c.SetPod(testPod("c", "", "", onNode("n1"), withLabels("app", "db")))
	if m.perNode[n] != 2 {
		t.Fatalf("count after adds %d, want 2", m.perNode[n])
	}
	c.RemovePod("default/a")
	if m.perNode[n] != 1 {
		t.Fatalf("count after remove %d, want 1", m.perNode[n])
	}
}

// TestDomainCountsFollowChanges checks the incrementally kept per-domain
// counts against a recount after pods and nodes come and go.
func TestDomainCountsFollowChanges(t *testing.T) {
	zone := func(z string) func(*v1.Node) { return nodeLabels("zone", z) }
	nodes := []*v1.Node{testNode("a1", "4", "8Gi", zone("a")), testNode("a2", "4", "8Gi", zone("a")), testNode("b1", "4", "8Gi", zone("b")), testNode("none", "4", "8Gi")}
	web := func(name, node string) *v1.Pod { return testPod(name, "", "", onNode(node), withLabels("app", "web")) }
	c := testCache(nodes, web("w1", "a1"), web("w2", "b1"), web("w3", "none"))
	sel := labels.SelectorFromSet(labels.Set{"app": "web"})
	check := func(step string) {
		t.Helper()
		c.mu.Lock()
		defer c.mu.Unlock()
		m := c.matchIndexLocked("default", sel)
		dc := c.domainCountsLocked(m, "zone")
		want := map[string]int64{}
		for _, cp := range c.pods {
			n := c.nodes[cp.node]
			if v, ok := n.labels["zone"]; ok && n.index >= 0 && cp.info.labels["app"] == "web" {
				want[v]++
			}
		}
		got := map[string]int64{}
		for d, name := range dc.topo.names {
			if dc.counts[d] != 0 {
				got[name] = dc.counts[d]
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: counts per zone (-want +got):\n%s", step, diff)
		}
	}
	check("initial")
	c.SetPod(web("w4", "a2"))
	c.SetPod(testPod("other", "", "", onNode("a2"), withLabels("app", "other")))
	check("pod added")
	c.RemovePod("default/w1")
	check("pod removed")
	c.RemoveNode("a1")
	c.SetPod(web("w5", "b1"))
	check("node removed")
	c.SetNode(testNode("b2", "4", "8Gi", zone("b")))
	c.SetPod(web("w6", "b2"))
	c.SetNode(testNode("a2", "4", "8Gi", zone("c")))
	c.SetPod(web("w7", "a2"))
	check("node added and relabelled")
}
