package scheduler

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// A pod being resized holds the larger of its spec and what the kubelet
// allocated, unless the kubelet found the resize infeasible.
func TestResizeAwareRequests(t *testing.T) {
	cpu := func(s string) v1.ResourceList { return v1.ResourceList{v1.ResourceCPU: resource.MustParse(s)} }
	pod := func(spec, allocated string, actual v1.ResourceList, reason string) *v1.Pod {
		p := &v1.Pod{
			Spec:   v1.PodSpec{Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: cpu(spec)}}}},
			Status: v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{{Name: "c", AllocatedResources: cpu(allocated)}}},
		}
		if actual != nil {
			p.Status.ContainerStatuses[0].Resources = &v1.ResourceRequirements{Requests: actual}
		}
		if reason != "" {
			p.Status.Conditions = []v1.PodCondition{{Type: v1.PodResizePending, Status: v1.ConditionTrue, Reason: reason}}
		}
		return p
	}
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		want int64
	}{
		{"no resize", pod("1", "1", nil, ""), 1000},
		{"increase pending", pod("2", "1", nil, v1.PodReasonDeferred), 2000},
		{"decrease in progress", pod("1", "1", cpu("3"), ""), 3000},
		{"allocated above spec", pod("1", "2", nil, ""), 2000},
		{"infeasible increase", pod("4", "1", nil, v1.PodReasonInfeasible), 1000},
		{"no status yet", &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: cpu("5")}}}}}, 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r, _, _ := resizeAwareRequests(tc.pod); r.milliCPU != tc.want {
				t.Errorf("cpu %dm, want %dm", r.milliCPU, tc.want)
			}
		})
	}
}
