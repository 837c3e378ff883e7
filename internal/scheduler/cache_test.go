package scheduler

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
