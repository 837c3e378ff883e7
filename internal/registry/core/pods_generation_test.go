package core

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// A pod's metadata.generation follows upstream's PodObservedGenerationTracking:
// 1 on create whatever the client sent, one more for each write of the
// main resource that changes the spec, unchanged by metadata-only and
// status writes and by a client-set value. (The bump of a graceful
// deletion is the API server's: internal/apiserver's beginDeletion.)
func TestPodGeneration(t *testing.T) {
	r := Pods()
	ctx := context.Background()

	t.Run("create", func(t *testing.T) {
		pod := validPod()
		pod.Generation = 100
		pod.Status.ObservedGeneration = 100
		r.Strategy.PrepareForCreate(ctx, pod)
		if pod.Generation != 1 || pod.Status.ObservedGeneration != 0 {
			t.Errorf("generation %d, observedGeneration %d; want 1 and 0", pod.Generation, pod.Status.ObservedGeneration)
		}
	})

	base := func() *corev1.Pod {
		p := validPod()
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox:1.36"}}
		defaultPod(p)
		AdmitPod(p)
		p.Generation = 3
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, QOSClass: corev1.PodQOSBestEffort, ObservedGeneration: 3}
		return p
	}
	for _, tc := range []struct {
		name    string
		mutate  func(p *corev1.Pod)
		wantGen int64
	}{
		{"empty update", func(p *corev1.Pod) {}, 3},
		{"tolerations", func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "foo", Operator: corev1.TolerationOpEqual, Value: "bar", Effect: corev1.TaintEffectNoSchedule})
		}, 4},
		{"activeDeadlineSeconds", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](5000) }, 4},
		{"container image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" }, 4},
		{"init container image", func(p *corev1.Pod) { p.Spec.InitContainers[0].Image = "busybox:1.37" }, 4},
		{"annotations only", func(p *corev1.Pod) { p.Annotations = map[string]string{"key": "value"} }, 3},
		{"client-set generation", func(p *corev1.Pod) { p.Generation = 1 }, 3},
		{"client-set generation with a spec change", func(p *corev1.Pod) {
			p.Generation = 10
			p.Spec.ActiveDeadlineSeconds = ptr.To[int64](60)
		}, 4},
		{"status through the main resource", func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodFailed
			p.Status.ObservedGeneration = 9
		}, 3},
	} {
		t.Run("update/"+tc.name, func(t *testing.T) {
			old := base()
			pod := old.DeepCopy()
			tc.mutate(pod)
			r.Strategy.PrepareForUpdate(ctx, pod, old)
			if pod.Generation != tc.wantGen {
				t.Errorf("generation = %d, want %d", pod.Generation, tc.wantGen)
			}
			if diff := cmp.Diff(old.Status, pod.Status); diff != "" {
				t.Errorf("status changed by an update of the main resource:\n%s", diff)
			}
			assertErrKeys(t, r.Strategy.ValidateUpdate(pod, old))
		})
	}

	t.Run("status update", func(t *testing.T) {
		old := base()
		pod := old.DeepCopy()
		pod.Generation = 7
		pod.Spec.ActiveDeadlineSeconds = ptr.To[int64](10)
		pod.Status.ObservedGeneration = 3
		r.Strategy.PrepareForStatusUpdate(ctx, pod, old)
		if pod.Generation != 3 {
			t.Errorf("generation = %d after a status write, want 3", pod.Generation)
		}
		if pod.Spec.ActiveDeadlineSeconds != nil {
			t.Errorf("a status write changed the spec")
		}
	})
}

// A status write that leaves observedGeneration out (0), in the status or
// in a condition, keeps what was stored, as upstream: only a writer that
// sets it changes it.
func TestPodStatusKeepsObservedGenerations(t *testing.T) {
	r := Pods()
	old := validPod()
	old.Generation = 4
	old.Status = corev1.PodStatus{Phase: corev1.PodRunning, QOSClass: corev1.PodQOSBestEffort, ObservedGeneration: 4,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, ObservedGeneration: 4},
			{Type: "example.com/gate", Status: corev1.ConditionTrue, ObservedGeneration: 2},
			{Type: "example.com/gate", Status: corev1.ConditionFalse, ObservedGeneration: 3},
		}}
	pod := old.DeepCopy()
	pod.Status.ObservedGeneration = 0
	pod.Status.Conditions = []corev1.PodCondition{
		{Type: "example.com/gate", Status: corev1.ConditionTrue},
		{Type: corev1.PodReady, Status: corev1.ConditionFalse},
		{Type: "example.com/gate", Status: corev1.ConditionTrue, ObservedGeneration: 4},
		{Type: corev1.ContainersReady, Status: corev1.ConditionFalse},
	}
	r.Strategy.PrepareForStatusUpdate(context.Background(), pod, old)
	if pod.Status.ObservedGeneration != 4 {
		t.Errorf("status.observedGeneration = %d, want 4 kept", pod.Status.ObservedGeneration)
	}
	var got []int64
	for _, c := range pod.Status.Conditions {
		got = append(got, c.ObservedGeneration)
	}
	// The first gate condition takes the first old one's; the second sets
	// its own; ContainersReady had none.
	if diff := cmp.Diff([]int64{2, 4, 4, 0}, got); diff != "" {
		t.Errorf("conditions' observedGeneration (-want +got):\n%s", diff)
	}
	assertErrKeys(t, r.Strategy.ValidateStatusUpdate(pod, old))

	// A writer may move it (the kubelet, to the generation it acted on).
	pod = old.DeepCopy()
	pod.Status.ObservedGeneration = 5
	r.Strategy.PrepareForStatusUpdate(context.Background(), pod, old)
	if pod.Status.ObservedGeneration != 5 {
		t.Errorf("status.observedGeneration = %d, want 5 as written", pod.Status.ObservedGeneration)
	}

	pod.Status.ObservedGeneration = -1
	pod.Status.Conditions[0].ObservedGeneration = -2
	assertErrKeys(t, r.Strategy.ValidateStatusUpdate(pod, old),
		"FieldValueInvalid status.observedGeneration",
		"FieldValueInvalid status.conditions[0].observedGeneration")
}
