package kubelet_test

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// instances counts the runtime's containers of the pod named name.
func (h *harness) instances(uid types.UID, name string) int {
	h.rt.Lock()
	defer h.rt.Unlock()
	n := 0
	for _, c := range h.rt.Containers {
		if c.Labels["io.kubernetes.pod.uid"] == string(uid) && c.Labels["io.kubernetes.container.name"] == name {
			n++
		}
	}
	return n
}

// An ephemeral container added through pods/ephemeralcontainers starts in
// the running pod, is reported in ephemeralContainerStatuses (never
// ready, no started), leaves the pod's phase and readiness alone, and once
// it exits stays terminated although the pod's restartPolicy is Always.
func TestKubeletRunsEphemeralContainers(t *testing.T) {
	h := start(t)
	pod := h.createPod("debugme", corev1.RestartPolicyAlways)
	h.waitStatus("debugme", "Running and Ready", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].Ready
	})
	pods := h.c.Client.CoreV1().Pods("default")
	p, err := pods.Get(h.ctx, "debugme", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name: "debugger", Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent,
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		},
		TargetContainerName: "c",
	}}
	if _, err := pods.UpdateEphemeralContainers(h.ctx, "debugme", p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	p = h.waitStatus("debugme", "debugger running", func(p *corev1.Pod) bool {
		ecs := p.Status.EphemeralContainerStatuses
		return len(ecs) == 1 && ecs[0].State.Running != nil
	})
	if ec := p.Status.EphemeralContainerStatuses[0]; ec.Name != "debugger" || ec.Ready || ec.Started != nil || ec.ContainerID == "" {
		t.Errorf("ephemeral container status %+v, want debugger with a container ID, not ready, no started", ec)
	}
	if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 1 || !p.Status.ContainerStatuses[0].Ready {
		t.Errorf("the pod changed with its ephemeral container: phase %s, statuses %+v", p.Status.Phase, p.Status.ContainerStatuses)
	}

	h.exitContainer(pod.UID, "debugger", 7)
	h.waitStatus("debugme", "debugger terminated", func(p *corev1.Pod) bool {
		ecs := p.Status.EphemeralContainerStatuses
		return len(ecs) == 1 && ecs[0].State.Terminated != nil && ecs[0].State.Terminated.ExitCode == 7
	})
	// Several relists (50 ms) and a resync (1 s) later it has not run again.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if n := h.instances(pod.UID, "debugger"); n != 1 {
			t.Fatalf("%d instances of the ephemeral container, want 1 (never restarted)", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p = h.waitStatus("debugme", "still Running and Ready", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].Ready
	})
	if ec := p.Status.EphemeralContainerStatuses[0]; ec.State.Terminated == nil || ec.RestartCount != 0 {
		t.Errorf("exited ephemeral container status %+v, want terminated with no restarts", ec)
	}
}
