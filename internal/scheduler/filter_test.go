package scheduler

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestFilterNode(t *testing.T) {
	big := testNode("n1", "4", "8Gi")
	tainted := testNode("n1", "4", "8Gi", func(n *v1.Node) {
		n.Spec.Taints = []v1.Taint{{Key: "node-role", Value: "x", Effect: v1.TaintEffectNoSchedule}, {Key: "soft", Effect: v1.TaintEffectPreferNoSchedule}}
	})
	cordoned := testNode("n1", "4", "8Gi", func(n *v1.Node) { n.Spec.Unschedulable = true })
	zoned := testNode("n1", "4", "8Gi", nodeLabels("zone", "a", "size", "8"))
	twoPods := testNode("n1", "4", "8Gi", func(n *v1.Node) { n.Status.Allocatable[v1.ResourcePods] = resource.MustParse("2") })
	hostPort := func(port int32, ip string) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: port, HostIP: ip}}
		}
	}
	affinity := func(terms ...v1.NodeSelectorTerm) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: terms}}}
		}
	}
	expr := func(key string, op v1.NodeSelectorOperator, vals ...string) v1.NodeSelectorTerm {
		return v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: key, Operator: op, Values: vals}}}
	}
	tests := []struct {
		name     string
		node     *v1.Node
		existing []*v1.Pod
		pod      *v1.Pod
		want     *status
	}{
		{"fits", big, nil, testPod("p", "1", "1Gi"), nil},
		{"insufficient cpu", big, nil, testPod("p", "5", "1Gi"), &status{reasons: []string{"Insufficient cpu"}}},
		{"insufficient cpu and memory", big, []*v1.Pod{testPod("a", "3", "7Gi", onNode("n1"))}, testPod("p", "2", "2Gi"),
			&status{reasons: []string{"Insufficient cpu", "Insufficient memory"}}},
		{"too many pods", twoPods, []*v1.Pod{testPod("a", "", "", onNode("n1")), testPod("b", "", "", onNode("n1"))}, testPod("p", "", ""),
			&status{reasons: []string{"Too many pods"}}},
		{"init container max counts", big, nil, testPod("p", "1", "", func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{{Name: "i", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("4500m")}}}}
		}), &status{reasons: []string{"Insufficient cpu"}}},
		{"init containers are not summed", big, nil, testPod("p", "1", "", func(p *v1.Pod) {
			r := v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("3")}}
			p.Spec.InitContainers = []v1.Container{{Name: "i1", Resources: r}, {Name: "i2", Resources: r}}
		}), nil},
		{"overhead counts", big, nil, testPod("p", "3500m", "", func(p *v1.Pod) {
			p.Spec.Overhead = v1.ResourceList{v1.ResourceCPU: resource.MustParse("600m")}
		}), &status{reasons: []string{"Insufficient cpu"}}},
		{"extended resource", big, nil, testPod("p", "", "", func(p *v1.Pod) {
			p.Spec.Containers[0].Resources.Requests["example.com/gpu"] = resource.MustParse("1")
		}), &status{reasons: []string{"Insufficient example.com/gpu"}}},
		{"untolerated taint", tainted, nil, testPod("p", "", ""), &status{reasons: []string{"node(s) had untolerated taint {node-role: x}"}, unresolvable: true}},
		{"tolerated taint", tainted, nil, testPod("p", "", "", func(p *v1.Pod) {
			p.Spec.Tolerations = []v1.Toleration{{Key: "node-role", Operator: v1.TolerationOpExists}}
		}), nil},
		{"toleration with wrong value", tainted, nil, testPod("p", "", "", func(p *v1.Pod) {
			p.Spec.Tolerations = []v1.Toleration{{Key: "node-role", Value: "y"}}
		}), &status{reasons: []string{"node(s) had untolerated taint {node-role: x}"}, unresolvable: true}},
		{"unschedulable", cordoned, nil, testPod("p", "", ""), statusUnschedulable},
		{"unschedulable tolerated", cordoned, nil, testPod("p", "", "", func(p *v1.Pod) {
			p.Spec.Tolerations = []v1.Toleration{{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}}
		}), nil},
		{"nodeSelector match", zoned, nil, testPod("p", "", "", func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "a"} }), nil},
		{"nodeSelector mismatch", zoned, nil, testPod("p", "", "", func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "b"} }), statusNodeAffinity},
		{"affinity In", zoned, nil, testPod("p", "", "", affinity(expr("zone", v1.NodeSelectorOpIn, "a", "b"))), nil},
		{"affinity NotIn", zoned, nil, testPod("p", "", "", affinity(expr("zone", v1.NodeSelectorOpNotIn, "a"))), statusNodeAffinity},
		{"affinity Gt", zoned, nil, testPod("p", "", "", affinity(expr("size", v1.NodeSelectorOpGt, "4"))), nil},
		{"affinity terms are ORed", zoned, nil, testPod("p", "", "", affinity(expr("zone", v1.NodeSelectorOpIn, "b"), expr("size", v1.NodeSelectorOpExists))), nil},
		{"affinity empty term matches nothing", zoned, nil, testPod("p", "", "", affinity(v1.NodeSelectorTerm{})), statusNodeAffinity},
		{"affinity matchFields name", zoned, nil, testPod("p", "", "", affinity(v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{{Key: "metadata.name", Operator: v1.NodeSelectorOpIn, Values: []string{"n2"}}}})), statusNodeAffinity},
		{"host port conflict", big, []*v1.Pod{testPod("a", "", "", onNode("n1"), hostPort(8080, ""))}, testPod("p", "", "", hostPort(8080, "10.0.0.1")), statusNodePorts},
		{"host port different ip", big, []*v1.Pod{testPod("a", "", "", onNode("n1"), hostPort(8080, "10.0.0.2"))}, testPod("p", "", "", hostPort(8080, "10.0.0.1")), nil},
		{"host port free", big, []*v1.Pod{testPod("a", "", "", onNode("n1"), hostPort(8080, ""))}, testPod("p", "", "", hostPort(8081, "")), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := filterNode(newPodInfo(tt.pod), nodeInfoOf(tt.node, tt.existing...))
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(status{})); diff != "" {
				t.Errorf("filterNode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNominatedPodsReserveRoom(t *testing.T) {
	c := testCache([]*v1.Node{testNode("n1", "4", "8Gi")})
	c.Nominate(newPodInfo(testPod("high", "3", "", withPriority(100))), "n1")
	n := c.nodes["n1"]
	if st := filterNode(newPodInfo(testPod("low", "2", "", withPriority(10))), n); st == nil {
		t.Errorf("lower-priority pod fits into room reserved for a nominated pod")
	}
	if st := filterNode(newPodInfo(testPod("higher", "2", "", withPriority(1000))), n); st != nil {
		t.Errorf("higher-priority pod blocked by a nominated pod: %v", st.reasons)
	}
	c.RemovePod("default/high")
	if st := filterNode(newPodInfo(testPod("low", "2", "", withPriority(10))), n); st != nil {
		t.Errorf("nomination not cleared: %v", st.reasons)
	}
}

func TestPodRequests(t *testing.T) {
	always := v1.ContainerRestartPolicyAlways
	cpu := func(s string) v1.ResourceRequirements {
		return v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(s)}}
	}
	tests := []struct {
		name        string
		spec        v1.PodSpec
		wantCPU     int64
		wantNonZero int64
	}{
		{"no requests", v1.PodSpec{Containers: []v1.Container{{}, {}}}, 0, 200},
		{"sum of containers", v1.PodSpec{Containers: []v1.Container{{Resources: cpu("1")}, {Resources: cpu("500m")}}}, 1500, 1500},
		{"init max wins", v1.PodSpec{InitContainers: []v1.Container{{Resources: cpu("2")}}, Containers: []v1.Container{{Resources: cpu("1")}}}, 2000, 2000},
		{"sidecar adds", v1.PodSpec{InitContainers: []v1.Container{{Resources: cpu("1"), RestartPolicy: &always}}, Containers: []v1.Container{{Resources: cpu("1")}}}, 2000, 2000},
		{"overhead", v1.PodSpec{Containers: []v1.Container{{Resources: cpu("1")}}, Overhead: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m")}}, 1250, 1250},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, nz, _ := podRequests(&tt.spec)
			if r.milliCPU != tt.wantCPU || nz != tt.wantNonZero {
				t.Errorf("cpu = %d, nonzero = %d; want %d, %d", r.milliCPU, nz, tt.wantCPU, tt.wantNonZero)
			}
		})
	}
}
