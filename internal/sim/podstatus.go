package sim

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// failMarker in a container's image name makes that container fail: it
// never becomes ready and exits 1 where it would complete.
const failMarker = "fail"

// Condition reasons, as the kubelet writes them.
const (
	reasonContainersNotReady = "ContainersNotReady"
	reasonGatesNotReady      = "ReadinessGatesNotReady"
	reasonPodCompleted       = "PodCompleted"
	reasonCompleted          = "Completed"
	reasonError              = "Error"
)

// podReadyToStartContainers is the sandbox condition newer kubelets set.
const podReadyToStartContainers corev1.PodConditionType = "PodReadyToStartContainers"

func imageFails(image string) bool { return strings.Contains(image, failMarker) }

// podFails reports whether any regular container of pod fails. Init
// containers always complete.
func podFails(pod *corev1.Pod) bool {
	for _, c := range pod.Spec.Containers {
		if imageFails(c.Image) {
			return true
		}
	}
	return false
}

func isSidecar(c corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// containerID is a stable fake runtime id for one attempt of a container.
func containerID(uid types.UID, name string, attempt int32) string {
	h := fnv.New128a()
	_, _ = fmt.Fprintf(h, "%s/%s/%d", uid, name, attempt)
	return fmt.Sprintf("sim://%x", h.Sum(nil))
}

func imageID(image string) string { return "sim://" + image }

// runningStatus is pod's status once the simulator "started" it at now on
// a node at hostIP, with podIP: phase Running, every init container
// completed (sidecars running), every container running and ready unless
// its image fails, and the pod conditions to match (Ready also waits for
// readiness gates). Fields the simulator does not own (qosClass, other
// conditions, nominatedNodeName) are kept.
func runningStatus(pod *corev1.Pod, hostIP, podIP string, now metav1.Time) corev1.PodStatus {
	st := *pod.Status.DeepCopy()
	st.Phase = corev1.PodRunning
	st.Reason, st.Message = "", ""
	st.HostIP = hostIP
	st.HostIPs = []corev1.HostIP{{IP: hostIP}}
	if pod.Spec.HostNetwork {
		podIP = hostIP
	}
	if st.PodIP == "" && podIP != "" {
		st.PodIP = podIP
		st.PodIPs = []corev1.PodIP{{IP: podIP}}
	}
	if st.StartTime == nil {
		st.StartTime = &now
	}
	st.InitContainerStatuses = nil
	for _, c := range pod.Spec.InitContainers {
		cs := corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image),
			ContainerID: containerID(pod.UID, c.Name, 0),
		}
		if isSidecar(c) {
			cs.Ready, cs.Started = true, ptr.To(true)
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: now}
		} else {
			cs.Started = ptr.To(false)
			cs.State.Terminated = &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: reasonCompleted, StartedAt: now, FinishedAt: now, ContainerID: cs.ContainerID,
			}
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}
	st.ContainerStatuses = nil
	allReady := true
	for _, c := range pod.Spec.Containers {
		ready := !imageFails(c.Image)
		allReady = allReady && ready
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image),
			ContainerID: containerID(pod.UID, c.Name, 0),
			Ready:       ready, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	setReadiness(pod, &st, allReady, now)
	return st
}

// setReadiness sets the pod conditions of a running pod.
func setReadiness(pod *corev1.Pod, st *corev1.PodStatus, containersReady bool, now metav1.Time) {
	setPodCondition(st, corev1.PodScheduled, corev1.ConditionTrue, "", now)
	setPodCondition(st, podReadyToStartContainers, corev1.ConditionTrue, "", now)
	setPodCondition(st, corev1.PodInitialized, corev1.ConditionTrue, "", now)
	if containersReady {
		setPodCondition(st, corev1.ContainersReady, corev1.ConditionTrue, "", now)
	} else {
		setPodCondition(st, corev1.ContainersReady, corev1.ConditionFalse, reasonContainersNotReady, now)
	}
	switch {
	case !containersReady:
		setPodCondition(st, corev1.PodReady, corev1.ConditionFalse, reasonContainersNotReady, now)
	case !readinessGatesTrue(pod, st):
		setPodCondition(st, corev1.PodReady, corev1.ConditionFalse, reasonGatesNotReady, now)
	default:
		setPodCondition(st, corev1.PodReady, corev1.ConditionTrue, "", now)
	}
}

func readinessGatesTrue(pod *corev1.Pod, st *corev1.PodStatus) bool {
	for _, g := range pod.Spec.ReadinessGates {
		i := findPodCondition(st.Conditions, g.ConditionType)
		if i < 0 || st.Conditions[i].Status != corev1.ConditionTrue {
			return false
		}
	}
	return true
}

// completedStatus is pod's status when its containers exit at now:
// exit code 1 (reason Error) for failing images, 0 (Completed) otherwise;
// phase Failed if any container failed, else Succeeded.
func completedStatus(pod *corev1.Pod, now metav1.Time) corev1.PodStatus {
	st := *pod.Status.DeepCopy()
	failed := false
	st.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		cs := terminate(pod, findContainerStatus(pod.Status.ContainerStatuses, c.Name), c, imageFails(c.Image), now)
		failed = failed || imageFails(c.Image)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	for i := range st.InitContainerStatuses {
		cs := &st.InitContainerStatuses[i]
		if cs.State.Terminated == nil {
			for _, c := range pod.Spec.InitContainers {
				if c.Name == cs.Name {
					*cs = terminate(pod, cs, c, false, now)
				}
			}
		}
	}
	st.Phase = corev1.PodSucceeded
	if failed {
		st.Phase = corev1.PodFailed
	}
	setPodCondition(&st, podReadyToStartContainers, corev1.ConditionFalse, "", now)
	setPodCondition(&st, corev1.ContainersReady, corev1.ConditionFalse, reasonPodCompleted, now)
	setPodCondition(&st, corev1.PodReady, corev1.ConditionFalse, reasonPodCompleted, now)
	return st
}

// terminate is container c's status after it exits at now.
func terminate(pod *corev1.Pod, prev *corev1.ContainerStatus, c corev1.Container, fail bool, now metav1.Time) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), ContainerID: containerID(pod.UID, c.Name, 0)}
	started := now
	if prev != nil {
		cs.ContainerID = prev.ContainerID
		cs.RestartCount = prev.RestartCount
		cs.LastTerminationState = prev.LastTerminationState
		if prev.State.Running != nil {
			started = prev.State.Running.StartedAt
		}
	}
	cs.Started = ptr.To(false)
	code, reason := int32(0), reasonCompleted
	if fail {
		code, reason = 1, reasonError
	}
	cs.State.Terminated = &corev1.ContainerStateTerminated{
		ExitCode: code, Reason: reason, StartedAt: started, FinishedAt: now, ContainerID: cs.ContainerID,
	}
	return cs
}

// crashedStatus is pod's status after every failing container exits 1 at
// now and is restarted at once: restartCount grows, lastState holds the
// exit, and the container runs again (not ready). The kubelet would show
// CrashLoopBackOff (waiting) between the two; the simulator skips that
// state to spend one write per crash.
func crashedStatus(pod *corev1.Pod, now metav1.Time) corev1.PodStatus {
	st := *pod.Status.DeepCopy()
	for i := range st.ContainerStatuses {
		cs := &st.ContainerStatuses[i]
		if !imageFails(cs.Image) {
			continue
		}
		started := now
		if cs.State.Running != nil {
			started = cs.State.Running.StartedAt
		}
		cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 1, Reason: reasonError, StartedAt: started, FinishedAt: now, ContainerID: cs.ContainerID,
		}}
		cs.RestartCount++
		cs.ContainerID = containerID(pod.UID, cs.Name, cs.RestartCount)
		cs.Ready = false
		cs.Started = ptr.To(true)
		cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
	}
	return st
}

func findContainerStatus(sts []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range sts {
		if sts[i].Name == name {
			return &sts[i]
		}
	}
	return nil
}

func findPodCondition(conds []corev1.PodCondition, t corev1.PodConditionType) int {
	for i := range conds {
		if conds[i].Type == t {
			return i
		}
	}
	return -1
}

// setPodCondition sets condition t, keeping its transition time when the
// status does not change.
func setPodCondition(st *corev1.PodStatus, t corev1.PodConditionType, s corev1.ConditionStatus, reason string, now metav1.Time) {
	c := corev1.PodCondition{Type: t, Status: s, Reason: reason, LastTransitionTime: now}
	if i := findPodCondition(st.Conditions, t); i >= 0 {
		if st.Conditions[i].Status == s {
			c.LastTransitionTime = st.Conditions[i].LastTransitionTime
			c.LastProbeTime = st.Conditions[i].LastProbeTime
		}
		st.Conditions[i] = c
		return
	}
	st.Conditions = append(st.Conditions, c)
}

// crashDelay is how long a failing container of a restarting pod runs
// before it crashes again: RunTime after the first start, then doubling
// with every restart (the kubelet's crash-loop back-off) up to 5 minutes.
func crashDelay(runTime time.Duration, restarts int32) time.Duration {
	const maxDelay = 5 * time.Minute
	d := max(runTime, 10*time.Millisecond)
	for i := int32(0); i < restarts && d < maxDelay; i++ {
		d *= 2
	}
	return min(d, maxDelay)
}
