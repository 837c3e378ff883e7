package kubelet

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// TestKeepExtendedResources: the node status the kubelet writes keeps the
// extended resources someone else patched into capacity (upstream's
// preemption tests advertise scheduling.k8s.io/foo this way), with
// allocatable following capacity, and never an unknown native one.
func TestKeepExtendedResources(t *testing.T) {
	q := resource.MustParse
	cur := &corev1.Node{Status: corev1.NodeStatus{
		Capacity: corev1.ResourceList{
			corev1.ResourceCPU: q("2"), "scheduling.k8s.io/foo": q("5"), "example.com/dongle": q("1"),
			"kubernetes.io/batteries": q("3"), "hugepages-2Mi": q("0"),
		},
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: q("2"), "scheduling.k8s.io/foo": q("4")},
	}}
	upd := &corev1.Node{Status: corev1.NodeStatus{
		Capacity:    corev1.ResourceList{corev1.ResourceCPU: q("4")},
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: q("4")},
	}}
	keepExtendedResources(upd, cur)
	want := map[corev1.ResourceName]string{corev1.ResourceCPU: "4", "scheduling.k8s.io/foo": "5", "example.com/dongle": "1"}
	for _, list := range []corev1.ResourceList{upd.Status.Capacity, upd.Status.Allocatable} {
		if len(list) != len(want) {
			t.Errorf("resources %v, want %v", list, want)
		}
		for name, v := range want {
			if got, ok := list[name]; !ok || got.Cmp(q(v)) != 0 {
				t.Errorf("%s = %v, want %s (in %v)", name, got.String(), v, list)
			}
		}
	}
}
