package kubelet

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func list(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func TestResizeActions(t *testing.T) {
	restartMem := []corev1.ContainerResizePolicy{
		{ResourceName: corev1.ResourceCPU, RestartPolicy: corev1.NotRequired},
		{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.RestartContainer},
	}
	have := corev1.ResourceRequirements{Requests: list("cpu", "20m", "memory", "35Mi"), Limits: list("cpu", "30m", "memory", "45Mi")}
	for _, tc := range []struct {
		name        string
		want        corev1.ResourceRequirements
		policy      []corev1.ContainerResizePolicy
		none        bool
		restart     bool
		memoryLower bool
	}{
		{name: "same", want: have, none: true},
		{name: "same in other units", want: corev1.ResourceRequirements{Requests: list("cpu", "0.02", "memory", "36700160"), Limits: list("cpu", "30m", "memory", "45Mi")}, none: true},
		{name: "cpu, no policy", want: corev1.ResourceRequirements{Requests: list("cpu", "25m", "memory", "35Mi"), Limits: list("cpu", "35m", "memory", "45Mi")}},
		{name: "cpu, memory restarts", policy: restartMem, want: corev1.ResourceRequirements{Requests: list("cpu", "25m", "memory", "35Mi"), Limits: list("cpu", "30m", "memory", "45Mi")}},
		{name: "memory request, memory restarts", policy: restartMem, restart: true, want: corev1.ResourceRequirements{Requests: list("cpu", "20m", "memory", "40Mi"), Limits: list("cpu", "30m", "memory", "45Mi")}},
		{name: "memory limit down", memoryLower: true, want: corev1.ResourceRequirements{Requests: list("cpu", "20m", "memory", "35Mi"), Limits: list("cpu", "30m", "memory", "40Mi")}},
		{name: "equivalent cgroup values still update", want: corev1.ResourceRequirements{Requests: list("cpu", "1m", "memory", "35Mi"), Limits: list("cpu", "5m", "memory", "45Mi")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &corev1.Container{Name: "c", Resources: tc.want, ResizePolicy: tc.policy}
			got := resizeActions(c, have)
			if tc.none {
				if got != nil {
					t.Fatalf("got %+v, want no action", got)
				}
				return
			}
			if got == nil {
				t.Fatal("no action")
			}
			if got.restart != tc.restart || got.memoryLimitLowered() != tc.memoryLower {
				t.Fatalf("restart %v memoryLimitLowered %v; want %v %v", got.restart, got.memoryLimitLowered(), tc.restart, tc.memoryLower)
			}
		})
	}
	t.Run("a memory limit added counts as lowered", func(t *testing.T) {
		c := &corev1.Container{Name: "c", Resources: corev1.ResourceRequirements{Requests: list("memory", "30Mi"), Limits: list("memory", "50Mi")}}
		got := resizeActions(c, corev1.ResourceRequirements{Requests: list("memory", "35Mi")})
		if got == nil || !got.memoryLimitLowered() {
			t.Fatalf("got %+v", got)
		}
	})
}

func TestResizeFit(t *testing.T) {
	pod := func(cpu, mem string) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Resources: corev1.ResourceRequirements{Requests: list("cpu", "500m")}}},
			Containers:     []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: list("cpu", cpu, "memory", mem)}}},
		}}
	}
	alloc := list("cpu", "2", "memory", "4Gi")
	for _, tc := range []struct {
		name             string
		pod              *corev1.Pod
		others           corev1.ResourceList
		podLevel         bool
		reason, msgStart string
	}{
		{name: "fits", pod: pod("1", "1Gi"), others: list("cpu", "1", "memory", "1Gi")},
		{name: "cpu short", pod: pod("1100m", "1Gi"), others: list("cpu", "1", "memory", "1Gi"),
			reason: corev1.PodReasonDeferred, msgStart: "Node didn't have enough resource: cpu, requested: 1100, used: 1000, capacity: 2000"},
		{name: "memory short", pod: pod("100m", "3Gi"), others: list("cpu", "1", "memory", "2Gi"),
			reason: corev1.PodReasonDeferred, msgStart: "Node didn't have enough resource: memory, requested: 3221225472, used: 2147483648, capacity: 4294967296"},
		{name: "pod-level resources", pod: pod("1", "1Gi"), podLevel: true,
			reason: corev1.PodReasonInfeasible, msgStart: "In-place pod-level resources resize is not supported on this node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &podAllocation{}
			if tc.podLevel {
				tc.pod.Spec.Resources = &corev1.ResourceRequirements{Requests: list("cpu", "2")}
			}
			reason, msg := resizeFit(tc.pod, a, tc.others, alloc)
			if reason != tc.reason || !strings.HasPrefix(msg, tc.msgStart) {
				t.Fatalf("got %q %q; want %q %q", reason, msg, tc.reason, tc.msgStart)
			}
		})
	}
}

func TestPodRequestsCountsSidecarsAndInitContainers(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	p := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{
			{Name: "side", RestartPolicy: &always, Resources: corev1.ResourceRequirements{Requests: list("cpu", "100m")}},
			{Name: "init", Resources: corev1.ResourceRequirements{Requests: list("cpu", "1", "memory", "10Mi")}},
		},
		Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: list("cpu", "200m", "memory", "20Mi")}}},
	}}
	got := podRequests(p)
	if cpu, mem := got.Cpu().MilliValue(), got.Memory().Value(); cpu != 1100 || mem != 20<<20 {
		t.Fatalf("cpu %dm memory %d; want 1100m (init + sidecar) and 20Mi", cpu, mem)
	}
}
