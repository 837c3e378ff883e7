package kubelet_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

// exitContainer makes the running container name of pod uid exit with code.
func (h *harness) exitContainer(uid types.UID, name string, code int32) {
	h.t.Helper()
	h.rt.Lock()
	defer h.rt.Unlock()
	for _, c := range h.rt.Containers {
		if c.Labels["io.kubernetes.pod.uid"] == string(uid) && c.Metadata.GetName() == name &&
			c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			c.State = runtimeapi.ContainerState_CONTAINER_EXITED
			c.ExitCode = code
			c.FinishedAt = time.Now().UnixNano()
			return
		}
	}
	h.t.Fatalf("no running container %s in pod %s", name, uid)
}

// createInitPod creates a pod with init containers inits (a name with the
// prefix "side" is a sidecar: restartPolicy Always) and one app container c.
func (h *harness) createInitPod(name string, policy corev1.RestartPolicy, inits ...string) *corev1.Pod {
	h.t.Helper()
	ctr := func(n string) corev1.Container {
		return corev1.Container{Name: n, Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent}
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName: "n1", RestartPolicy: policy, TerminationGracePeriodSeconds: ptr.To(int64(5)),
			Containers: []corev1.Container{ctr("c")},
		},
	}
	for _, n := range inits {
		c := ctr(n)
		if strings.HasPrefix(n, "side") {
			c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		}
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	}
	p, err := h.c.Client.CoreV1().Pods("default").Create(h.ctx, p, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func condition(p *corev1.Pod, typ corev1.PodConditionType) corev1.PodCondition {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return corev1.PodCondition{}
}

func running(cs corev1.ContainerStatus) bool { return cs.State.Running != nil }

func waitingFor(cs corev1.ContainerStatus) string {
	if cs.State.Waiting == nil {
		return ""
	}
	return cs.State.Waiting.Reason
}

// Init containers report as upstream's kubelet: one that exited 0 is
// ready; one not started yet, and the app containers, wait with reason
// PodInitializing; Initialized lists the incomplete ones.
func TestKubeletInitContainerStatus(t *testing.T) {
	h := start(t)

	t.Run("RestartNever: completed init containers are ready", func(t *testing.T) {
		pod := h.createInitPod("never", corev1.RestartPolicyNever, "init1", "init2")
		p := h.waitStatus("never", "init1 running", func(p *corev1.Pod) bool {
			return len(p.Status.InitContainerStatuses) == 2 && running(p.Status.InitContainerStatuses[0])
		})
		if got := waitingFor(p.Status.InitContainerStatuses[1]); got != "PodInitializing" {
			t.Errorf("init2 waits with reason %q, want PodInitializing", got)
		}
		if got := waitingFor(p.Status.ContainerStatuses[0]); got != "PodInitializing" {
			t.Errorf("c waits with reason %q, want PodInitializing", got)
		}
		h.exitContainer(pod.UID, "init1", 0)
		h.waitStatus("never", "init2 running", func(p *corev1.Pod) bool { return running(p.Status.InitContainerStatuses[1]) })
		h.exitContainer(pod.UID, "init2", 0)
		h.waitStatus("never", "c running", func(p *corev1.Pod) bool { return running(p.Status.ContainerStatuses[0]) })
		h.exitContainer(pod.UID, "c", 0)
		p = h.waitStatus("never", "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
		for _, cs := range p.Status.InitContainerStatuses {
			if !cs.Ready || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
				t.Errorf("init container %s: ready %v, state %+v; want ready and terminated with exit code 0", cs.Name, cs.Ready, cs.State)
			}
		}
		if c := condition(p, corev1.PodInitialized); c.Status != corev1.ConditionTrue {
			t.Errorf("Initialized %+v, want True", c)
		}
	})

	t.Run("RestartAlways: a failing init container holds back the others", func(t *testing.T) {
		pod := h.createInitPod("always", corev1.RestartPolicyAlways, "init1", "init2")
		h.waitStatus("always", "init1 running", func(p *corev1.Pod) bool {
			return len(p.Status.InitContainerStatuses) == 2 && running(p.Status.InitContainerStatuses[0])
		})
		h.exitContainer(pod.UID, "init1", 1)
		p := h.waitStatus("always", "init1 restarted", func(p *corev1.Pod) bool {
			return p.Status.InitContainerStatuses[0].RestartCount == 1
		})
		if got := waitingFor(p.Status.InitContainerStatuses[1]); got != "PodInitializing" {
			t.Errorf("init2 waits with reason %q, want PodInitializing", got)
		}
		if got := waitingFor(p.Status.ContainerStatuses[0]); got != "PodInitializing" {
			t.Errorf("c waits with reason %q, want PodInitializing", got)
		}
		c := condition(p, corev1.PodInitialized)
		if c.Status != corev1.ConditionFalse || c.Reason != "ContainersNotInitialized" ||
			c.Message != "containers with incomplete status: [init1 init2]" {
			t.Errorf("Initialized %+v, want False, ContainersNotInitialized, containers with incomplete status: [init1 init2]", c)
		}
		if p.Status.Phase != corev1.PodPending {
			t.Errorf("phase %s, want Pending", p.Status.Phase)
		}
	})
}

// A sidecar (an init container with restartPolicy Always) starts in its
// turn, lets the next init container start, runs beside the app
// container, is restarted when it exits, and is stopped once the pod is
// done.
func TestKubeletSidecars(t *testing.T) {
	h := start(t)
	pod := h.createInitPod("side", corev1.RestartPolicyNever, "side1", "init1")
	h.waitStatus("side", "side1 and init1 running", func(p *corev1.Pod) bool {
		return len(p.Status.InitContainerStatuses) == 2 &&
			running(p.Status.InitContainerStatuses[0]) && running(p.Status.InitContainerStatuses[1])
	})
	h.exitContainer(pod.UID, "init1", 0)
	p := h.waitStatus("side", "Running with the sidecar", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && running(p.Status.ContainerStatuses[0]) && running(p.Status.InitContainerStatuses[0])
	})
	if s := p.Status.InitContainerStatuses[0]; !s.Ready || s.Started == nil || !*s.Started {
		t.Errorf("sidecar status %+v, want started and ready", s)
	}
	if c := condition(p, corev1.PodInitialized); c.Status != corev1.ConditionTrue {
		t.Errorf("Initialized %+v, want True", c)
	}

	// Exits of a sidecar are restarted, even in a restartPolicy Never pod.
	h.exitContainer(pod.UID, "side1", 1)
	h.waitStatus("side", "sidecar restarted", func(p *corev1.Pod) bool {
		s := p.Status.InitContainerStatuses[0]
		return s.RestartCount == 1 && running(s)
	})

	// The app container's exit ends the pod; the sidecar is stopped.
	h.exitContainer(pod.UID, "c", 0)
	p = h.waitStatus("side", "Succeeded with the sidecar stopped", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded && p.Status.InitContainerStatuses[0].State.Terminated != nil
	})
	if c := p.Status.ContainerStatuses[0]; c.State.Terminated == nil || c.State.Terminated.ExitCode != 0 {
		t.Errorf("app container %+v, want terminated with exit code 0", c.State)
	}
}

// A pod past its activeDeadlineSeconds fails with upstream's reason and
// message and its containers are stopped; lowering the deadline of a
// running pod applies at once.
func TestKubeletActiveDeadline(t *testing.T) {
	h := start(t)
	pod := h.createPod("deadline", corev1.RestartPolicyAlways)
	h.waitStatus("deadline", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := h.c.Client.CoreV1().Pods("default").Get(h.ctx, "deadline", metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Spec.ActiveDeadlineSeconds = ptr.To[int64](1)
		_, err = h.c.Client.CoreV1().Pods("default").Update(h.ctx, p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	p := h.waitStatus("deadline", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if p.Status.Reason != "DeadlineExceeded" || p.Status.Message != "Pod was active on the node longer than the specified deadline" {
		t.Errorf("reason %q message %q, want upstream's DeadlineExceeded", p.Status.Reason, p.Status.Message)
	}
	h.waitStatus("deadline", "container terminated", func(p *corev1.Pod) bool {
		return p.Status.ContainerStatuses[0].State.Terminated != nil
	})
	h.rt.Lock()
	defer h.rt.Unlock()
	for _, c := range h.rt.Containers {
		if c.Labels["io.kubernetes.pod.uid"] == string(pod.UID) && c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("container %s still running after the deadline", c.Metadata.GetName())
		}
	}
}
