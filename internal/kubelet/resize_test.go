package kubelet_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/utils/ptr"
)

// recordingRuntime is the fake runtime with the last resources each
// container was updated to.
type recordingRuntime struct {
	*critest.FakeRuntimeService
	mu      sync.Mutex
	updated map[string]*runtimeapi.LinuxContainerResources
}

func (r *recordingRuntime) UpdateContainerResources(ctx context.Context, id string, res *runtimeapi.ContainerResources) error {
	if err := r.FakeRuntimeService.UpdateContainerResources(ctx, id, res); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.updated == nil {
		r.updated = map[string]*runtimeapi.LinuxContainerResources{}
	}
	r.updated[id] = res.GetLinux()
	return nil
}

func (r *recordingRuntime) lastUpdate(id string) *runtimeapi.LinuxContainerResources {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.updated[id]
}

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func resizeCond(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func status(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// resized reports a finished resize: the kubelet saw the last generation
// and no resize condition is left.
func resized(p *corev1.Pod) bool {
	return p.Status.ObservedGeneration == p.Generation &&
		resizeCond(p, corev1.PodResizePending) == nil && resizeCond(p, corev1.PodResizeInProgress) == nil
}

// TestKubeletResizesInPlace drives pods/resize end to end on the fake
// runtime: an in-place update with the cgroup values a new container
// would get, a RestartContainer policy, a deferred resize that does not
// fit the node, and a memory limit below usage.
func TestKubeletResizesInPlace(t *testing.T) {
	h := start(t)
	pods := h.c.Client.CoreV1().Pods("default")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "rs", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:                      "n1",
			RestartPolicy:                 corev1.RestartPolicyOnFailure,
			TerminationGracePeriodSeconds: ptr.To(int64(0)),
			Containers: []corev1.Container{
				{Name: "a", Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent,
					Resources: corev1.ResourceRequirements{Requests: rl("cpu", "100m", "memory", "64Mi"), Limits: rl("cpu", "200m", "memory", "128Mi")}},
				{Name: "b", Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent,
					Resources:    corev1.ResourceRequirements{Requests: rl("cpu", "100m", "memory", "64Mi"), Limits: rl("memory", "128Mi")},
					ResizePolicy: []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.RestartContainer}}},
			},
		},
	}
	pod, err := pods.Create(h.ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := h.waitStatus("rs", "Running", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) == 2 &&
			p.Status.ContainerStatuses[0].Ready && p.Status.ContainerStatuses[1].Ready
	})
	for _, cs := range p.Status.ContainerStatuses {
		spec := pod.Spec.Containers[0].Resources
		if cs.Name == "b" {
			spec = pod.Spec.Containers[1].Resources
		}
		if cs.Resources == nil || !equalRL(cs.Resources.Requests, spec.Requests) || !equalRL(cs.Resources.Limits, spec.Limits) || !equalRL(cs.AllocatedResources, spec.Requests) {
			t.Fatalf("container %s: resources %+v allocated %v; want the spec's %+v", cs.Name, cs.Resources, cs.AllocatedResources, spec)
		}
	}
	_, aID, _ := strings.Cut(status(p, "a").ContainerID, "://")

	resize := func(patch string) *corev1.Pod {
		t.Helper()
		out, err := pods.Patch(h.ctx, "rs", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "resize")
		if err != nil {
			t.Fatalf("resize %s: %v", patch, err)
		}
		return out
	}

	t.Run("in place and with a restart", func(t *testing.T) {
		got := resize(`{"spec":{"containers":[` +
			`{"name":"a","resources":{"requests":{"cpu":"150m"},"limits":{"cpu":"300m"}}},` +
			`{"name":"b","resources":{"requests":{"memory":"96Mi"},"limits":{"memory":"160Mi"}}}]}}`)
		if got.Generation != 2 {
			t.Fatalf("generation %d after resize, want 2", got.Generation)
		}
		p := h.waitStatus("rs", "resized", func(p *corev1.Pod) bool {
			b := status(p, "b")
			return resized(p) && b.RestartCount == 1 && b.State.Running != nil
		})
		a, b := status(p, "a"), status(p, "b")
		if a.RestartCount != 0 || !equalRL(a.Resources.Limits, rl("cpu", "300m", "memory", "128Mi")) || !equalRL(a.AllocatedResources, rl("cpu", "150m", "memory", "64Mi")) {
			t.Fatalf("container a: %+v", a)
		}
		if !equalRL(b.Resources.Limits, rl("memory", "160Mi")) || !equalRL(b.AllocatedResources, rl("cpu", "100m", "memory", "96Mi")) {
			t.Fatalf("container b: %+v", b)
		}
		u := h.updates.lastUpdate(aID)
		if u == nil || u.CpuShares != 153 || u.CpuQuota != 30000 || u.CpuPeriod != 100000 || u.MemoryLimitInBytes != 128<<20 {
			t.Fatalf("UpdateContainerResources of a: %+v; want shares 153, quota 30000, memory 128Mi", u)
		}
	})

	t.Run("a memory limit below usage fails the resize", func(t *testing.T) {
		h.rt.Lock()
		h.rt.FakeContainerStats[aID] = &runtimeapi.ContainerStats{Memory: &runtimeapi.MemoryUsage{UsageBytes: &runtimeapi.UInt64Value{Value: 100 << 20}}}
		h.rt.Unlock()
		resize(`{"spec":{"containers":[{"name":"a","resources":{"limits":{"memory":"80Mi"}}}]}}`)
		p := h.waitStatus("rs", "resize error", func(p *corev1.Pod) bool {
			c := resizeCond(p, corev1.PodResizeInProgress)
			return c != nil && c.Reason == corev1.PodReasonError
		})
		c := resizeCond(p, corev1.PodResizeInProgress)
		if !strings.Contains(c.Message, `memory limit (83886080) below current usage (104857600)`) || c.ObservedGeneration != 3 {
			t.Fatalf("condition %+v", c)
		}
		if a := status(p, "a"); !equalRL(a.Resources.Limits, rl("cpu", "300m", "memory", "128Mi")) {
			t.Fatalf("resources changed by a failed resize: %+v", a.Resources)
		}
		// Undoing it ends the resize.
		resize(`{"spec":{"containers":[{"name":"a","resources":{"limits":{"memory":"128Mi"}}}]}}`)
		h.waitStatus("rs", "resize error cleared", resized)
	})

	t.Run("a resize that does not fit is deferred", func(t *testing.T) {
		resize(`{"spec":{"containers":[{"name":"a","resources":{"requests":{"cpu":"100000"},"limits":{"cpu":"100000"}}}]}}`)
		p := h.waitStatus("rs", "resize pending", func(p *corev1.Pod) bool {
			return resizeCond(p, corev1.PodResizePending) != nil
		})
		c := resizeCond(p, corev1.PodResizePending)
		if c.Reason != corev1.PodReasonDeferred || !strings.HasPrefix(c.Message, "Node didn't have enough resource: cpu, requested: 100000100, used: 0, capacity: ") ||
			c.ObservedGeneration != p.Generation {
			t.Fatalf("condition %+v", c)
		}
		if a := status(p, "a"); !equalRL(a.AllocatedResources, rl("cpu", "150m", "memory", "64Mi")) {
			t.Fatalf("allocation changed by a deferred resize: %v", a.AllocatedResources)
		}
		resize(`{"spec":{"containers":[{"name":"a","resources":{"requests":{"cpu":"150m"},"limits":{"cpu":"300m"}}}]}}`)
		h.waitStatus("rs", "pending cleared", resized)
	})
}

func equalRL(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v.Cmp(w) != 0 {
			return false
		}
	}
	return true
}
