package scheduler

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// testNode builds a node with allocatable cpu ("4"), memory ("8Gi") and
// pods (110).
func testNode(name, cpu, mem string, mods ...func(*v1.Node)) *v1.Node {
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: v1.NodeStatus{Allocatable: v1.ResourceList{
			v1.ResourceCPU:    resource.MustParse(cpu),
			v1.ResourceMemory: resource.MustParse(mem),
			v1.ResourcePods:   resource.MustParse("110"),
		}},
	}
	for _, m := range mods {
		m(n)
	}
	return n
}

func testPod(name, cpu, mem string, mods ...func(*v1.Pod)) *v1.Pod {
	req := v1.ResourceList{}
	if cpu != "" {
		req[v1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		req[v1.ResourceMemory] = resource.MustParse(mem)
	}
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{}},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: req}}}},
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func withLabels(kv ...string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		for i := 0; i+1 < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}

func withPriority(prio int32) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.Priority = &prio }
}

func onNode(node string) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.NodeName = node }
}

func nodeLabels(kv ...string) func(*v1.Node) {
	return func(n *v1.Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

// testCache builds a cache from nodes and bound pods.
func testCache(nodes []*v1.Node, pods ...*v1.Pod) *Cache {
	c := NewCache()
	for _, n := range nodes {
		c.SetNode(n)
	}
	for _, p := range pods {
		c.SetPod(p)
	}
	return c
}

func nodeInfoOf(n *v1.Node, pods ...*v1.Pod) *nodeInfo {
	c := testCache([]*v1.Node{n}, pods...)
	return c.nodes[n.Name]
}

func nodeNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}
