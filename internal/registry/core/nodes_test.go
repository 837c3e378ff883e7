package core

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func TestNodesDescriptor(t *testing.T) {
	r := Nodes()
	if r.Name != "nodes" || r.Singular != "node" || r.Kind != "Node" || r.Namespaced || !r.Status {
		t.Errorf("descriptor = %+v", r)
	}
	if diff := cmp.Diff([]string{"no"}, r.ShortNames); diff != "" {
		t.Errorf("shortNames: %s", diff)
	}
	if len(r.Categories) != 0 {
		t.Errorf("categories = %v, want none", r.Categories)
	}
}

func TestNodeCreateKeepsStatus(t *testing.T) {
	r := Nodes()
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
		Spec:       corev1.NodeSpec{PodCIDR: "10.244.1.0/24"},
		Status: corev1.NodeStatus{
			Capacity:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	r.Strategy.PrepareForCreate(context.Background(), n)
	r.Strategy.Default(n)
	if len(n.Status.Conditions) != 1 || n.Generation != 0 {
		t.Errorf("create changed status or generation: %+v gen %d", n.Status, n.Generation)
	}
	if got := n.Status.Allocatable[corev1.ResourceCPU]; got.String() != "4" {
		t.Errorf("allocatable cpu = %s, want capacity's 4", got.String())
	}
	if diff := cmp.Diff([]string{"10.244.1.0/24"}, n.Spec.PodCIDRs); diff != "" {
		t.Errorf("podCIDRs: %s", diff)
	}
	assertErrKeys(t, r.Strategy.Validate(n))
}

func TestValidateNode(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec corev1.NodeSpec
		want []string
	}{
		{"valid", corev1.NodeSpec{PodCIDRs: []string{"10.244.0.0/24", "fd00::/64"},
			Taints: []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}}, nil},
		{"bad cidr", corev1.NodeSpec{PodCIDRs: []string{"10.244.0.0"}}, []string{"FieldValueInvalid spec.podCIDRs[0]"}},
		{"two v4 cidrs", corev1.NodeSpec{PodCIDRs: []string{"10.244.0.0/24", "10.245.0.0/24"}}, []string{"FieldValueInvalid spec.podCIDRs"}},
		{"taints", corev1.NodeSpec{Taints: []corev1.Taint{
			{Key: "a", Effect: "Never"},
			{Key: "b"},
			{Key: "c", Effect: corev1.TaintEffectNoExecute},
			{Key: "c", Effect: corev1.TaintEffectNoExecute},
		}}, []string{
			"FieldValueNotSupported spec.taints[0].effect",
			"FieldValueRequired spec.taints[1].effect",
			"FieldValueDuplicate spec.taints[3]",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: tc.spec}
			assertErrKeys(t, Nodes().Strategy.Validate(n), tc.want...)
		})
	}
}

func TestNodeUpdate(t *testing.T) {
	r := Nodes()
	old := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"},
		Spec:   corev1.NodeSpec{PodCIDR: "10.244.0.0/24", PodCIDRs: []string{"10.244.0.0/24"}, ProviderID: "skiff://n"},
		Status: corev1.NodeStatus{Phase: corev1.NodeRunning}}
	n := old.DeepCopy()
	n.Spec.Unschedulable = true
	n.Status.Phase = ""
	r.Strategy.PrepareForUpdate(context.Background(), n, old)
	if n.Status.Phase != corev1.NodeRunning {
		t.Errorf("status not kept")
	}
	assertErrKeys(t, r.Strategy.ValidateUpdate(n, old))
	n.Spec.PodCIDRs = []string{"10.99.0.0/24"}
	n.Spec.ProviderID = "other"
	assertErrKeys(t, r.Strategy.ValidateUpdate(n, old), "FieldValueForbidden spec.podCIDRs", "FieldValueForbidden spec.providerID")

	// Status writes keep spec.
	s := old.DeepCopy()
	s.Spec.Unschedulable = true
	s.Status.Capacity = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}
	r.Strategy.PrepareForStatusUpdate(context.Background(), s, old)
	if s.Spec.Unschedulable {
		t.Errorf("status write changed spec")
	}
	if _, ok := s.Status.Allocatable[corev1.ResourceMemory]; !ok {
		t.Errorf("allocatable not defaulted on status write: %v", s.Status.Allocatable)
	}
}

func TestNodeTableRow(t *testing.T) {
	base := func() *corev1.Node {
		return &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "node-1", CreationTimestamp: metav1.NewTime(time.Now().Add(-3 * time.Hour)),
				Labels: map[string]string{"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "edge"}},
			Status: corev1.NodeStatus{
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
				Addresses:  []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "node-1"}, {Type: corev1.NodeInternalIP, Address: "192.0.2.10"}},
				NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.33.0-skiff", OSImage: "Debian GNU/Linux 13",
					KernelVersion: "6.12.0", ContainerRuntimeVersion: "containerd://2.1.0"},
			},
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(n *corev1.Node)
		want   []interface{}
	}{
		{"ready", func(n *corev1.Node) {}, []interface{}{"node-1", "Ready", "control-plane,edge,worker", "3h", "v1.33.0-skiff",
			"192.0.2.10", "<none>", "Debian GNU/Linux 13", "6.12.0", "containerd://2.1.0"}},
		{"not ready cordoned, no roles", func(n *corev1.Node) {
			n.Labels = nil
			n.Spec.Unschedulable = true
			n.Status.Conditions[0].Status = corev1.ConditionUnknown
			n.Status.NodeInfo = corev1.NodeSystemInfo{}
		}, []interface{}{"node-1", "NotReady,SchedulingDisabled", "<none>", "3h", "",
			"192.0.2.10", "<none>", "<unknown>", "<unknown>", "<unknown>"}},
		{"no condition", func(n *corev1.Node) { n.Status.Conditions = nil }, []interface{}{"node-1", "Unknown", "control-plane,edge,worker", "3h", "v1.33.0-skiff",
			"192.0.2.10", "<none>", "Debian GNU/Linux 13", "6.12.0", "containerd://2.1.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := base()
			tc.mutate(n)
			if diff := cmp.Diff(tc.want, Nodes().Table.Row(n)); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
	if got := len(Nodes().Table.Columns); got != 10 {
		t.Errorf("columns = %d, want 10", got)
	}
}

func TestNodeFields(t *testing.T) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}, Spec: corev1.NodeSpec{Unschedulable: true}}
	want := fields.Set{"metadata.name": "node-1", "spec.unschedulable": "true"}
	if diff := cmp.Diff(want, Nodes().Fields(n)); diff != "" {
		t.Errorf("fields: %s", diff)
	}
}
