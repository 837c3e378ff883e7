package kubelet

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// writeStatus computes pod's status from the runtime and writes it when it
// differs from what the API has.
func (k *Kubelet) writeStatus(ctx context.Context, pod *corev1.Pod, pr *podRuntime) error {
	if ips := pr.podIPs(); len(ips) > 0 {
		if err := k.updateHosts(pod, ips); err != nil {
			k.log.Warn("pod hosts file", "pod", klogRef(pod), "err", err)
		}
	}
	st := k.computeStatus(pod, pr, time.Now())
	k.observeStart(pod, st)
	if apiequality.Semantic.DeepEqual(&pod.Status, st) {
		return nil
	}
	upd := pod.DeepCopy()
	upd.Status = *st
	_, err := k.cfg.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("status of pod %s: %w", klogRef(pod), err)
	}
	return nil
}

// observeStart records kubelet_pod_start_duration_seconds when st, the
// status about to be written, takes a pod this kubelet first saw from
// Pending to Running (every container started, init containers done), as
// upstream does: once per pod, timed from when the kubelet first saw it.
// Pods that were running before the kubelet (re)started are not counted.
func (k *Kubelet) observeStart(pod *corev1.Pod, st *corev1.PodStatus) {
	if st.Phase != corev1.PodRunning || (pod.Status.Phase != corev1.PodPending && pod.Status.Phase != "") {
		return
	}
	k.mu.Lock()
	seen, ok := k.firstSeen[pod.UID]
	first := ok && !k.startObserved[pod.UID]
	if first {
		k.startObserved[pod.UID] = true
	}
	k.mu.Unlock()
	if first {
		k.metrics.podStartDuration.Observe(time.Since(seen).Seconds())
	}
}

// computeStatus is pod's status as upstream's kubelet reports it. Its
// observedGeneration is the generation of the pod this sync acted on: a
// spec update (the informer queues the pod) therefore always leads to a
// status write, and the write, made on that resourceVersion, fails with a
// conflict rather than report a generation the kubelet has not seen.
func (k *Kubelet) computeStatus(pod *corev1.Pod, pr *podRuntime, now time.Time) *corev1.PodStatus {
	st := pod.Status.DeepCopy()
	st.ObservedGeneration = pod.Generation
	if k.cfg.NodeIP != "" {
		st.HostIP = k.cfg.NodeIP
		st.HostIPs = []corev1.HostIP{{IP: k.cfg.NodeIP}}
	}
	if pod.Spec.HostNetwork && k.cfg.NodeIP != "" {
		st.PodIP = k.cfg.NodeIP
		st.PodIPs = []corev1.PodIP{{IP: k.cfg.NodeIP}}
	} else if ips := pr.podIPs(); len(ips) > 0 {
		st.PodIP = ips[0]
		st.PodIPs = nil
		for _, ip := range ips {
			st.PodIPs = append(st.PodIPs, corev1.PodIP{IP: ip})
		}
	}
	if st.StartTime == nil {
		k.mu.Lock()
		seen, ok := k.firstSeen[pod.UID]
		k.mu.Unlock()
		if !ok {
			seen = now
		}
		t := metav1.NewTime(seen.Truncate(time.Second))
		st.StartTime = &t
	}
	if st.QOSClass == "" {
		st.QOSClass = corev1.PodQOSBurstable
	}
	// A pod past its activeDeadlineSeconds is Failed: its containers are
	// being stopped and none restarts.
	expired := !terminalPhase(st.Phase) && pastDeadline(pod, st.StartTime, now)
	stopped := terminalPhase(st.Phase) || expired
	initDone := true
	st.InitContainerStatuses = nil
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := k.containerStatus(pod, c, pr, true, stopped)
		if !initComplete(c, &cs) {
			initDone = false
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}
	if appStarted(pod, pr) {
		initDone = true // initialized before; sidecars may be restarting
	}
	st.ContainerStatuses = nil
	for i := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, k.containerStatus(pod, &pod.Spec.Containers[i], pr, false, stopped))
	}
	st.EphemeralContainerStatuses = k.ephemeralStatuses(pod, pr, stopped)
	switch {
	case expired:
		st.Phase, st.Reason, st.Message = corev1.PodFailed, deadlineReason, deadlineMessage
	case pod.DeletionTimestamp != nil && len(pr.running()) == 0:
		st.Phase = deletedPhase(st)
	default:
		st.Phase = podPhase(pod, st, initDone)
	}
	k.resizeStatus(pod, st, pr)
	k.setConditions(pod, st, pr, initDone, now)
	return st
}

func terminalPhase(p corev1.PodPhase) bool { return p == corev1.PodSucceeded || p == corev1.PodFailed }

// initComplete reports whether init container c, with status cs, is done
// with the pod's initialization: a sidecar once it has started, any other
// once it has exited 0.
func initComplete(c *corev1.Container, cs *corev1.ContainerStatus) bool {
	if isSidecar(c) {
		return cs.Started != nil && *cs.Started
	}
	return cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
}

// defaultWaiting is the waiting reason of a container not created yet, as
// upstream's kubelet reports it: PodInitializing in a pod with init
// containers (for them too), else ContainerCreating.
func defaultWaiting(pod *corev1.Pod) string {
	if len(pod.Spec.InitContainers) > 0 {
		return "PodInitializing"
	}
	return "ContainerCreating"
}

// containerStatus is one container's status. stopped says the pod is
// terminal (or past its deadline): no container restarts.
//
// As upstream's kubelet: an init container that exited 0 is ready; a
// running one other than a sidecar is started but not ready; a sidecar is
// started and ready as its probes say, as app containers are.
func (k *Kubelet) containerStatus(pod *corev1.Pod, c *corev1.Container, pr *podRuntime, isInit, stopped bool) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, Started: new(bool)}
	w, hasWaiting := k.waitingFor(waitKey(pod.UID, c.Name))
	inst := pr.instances(c.Name)
	if len(inst) == 0 {
		if hasWaiting {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.reason, Message: w.message}
		} else {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: defaultWaiting(pod)}
		}
		return cs
	}
	cur := inst[0]
	cs.ContainerID = k.runtimeName() + "://" + cur.Id
	cs.ImageID = cur.ImageRef
	cs.RestartCount = int32(cur.GetMetadata().GetAttempt())
	switch cur.State {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(time.Unix(0, cur.StartedAt))}
		if isInit && !isSidecar(c) {
			*cs.Started = true
			break
		}
		started := k.cfg.Probes.Started(pod.UID, c.Name)
		cs.Started = &started
		cs.Ready = started && k.cfg.Probes.Ready(pod.UID, c.Name)
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		term := k.terminated(c, cur)
		if hasWaiting || (!stopped && pod.DeletionTimestamp == nil && shouldRestart(restartPolicyOf(pod, c, isInit), cur) && !podFinished(pod, pr)) {
			reason, msg := w.reason, w.message
			if !hasWaiting {
				reason, msg = "ContainerCreating", ""
			}
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
			cs.LastTerminationState.Terminated = term
		} else {
			cs.State.Terminated = term
			cs.Ready = isInit && !isSidecar(c) && term.ExitCode == 0
		}
	default:
		reason := "ContainerCreating"
		if hasWaiting {
			reason = w.reason
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: w.message}
	}
	if cs.LastTerminationState.Terminated == nil && len(inst) > 1 && isExited(inst[1]) {
		cs.LastTerminationState.Terminated = k.terminated(c, inst[1])
	}
	return cs
}

// restartPolicyOf is the policy a container restarts by: a sidecar
// always, other init containers of a restartPolicy Always pod on failure
// only, an ephemeral container never.
func restartPolicyOf(pod *corev1.Pod, c *corev1.Container, isInit bool) corev1.RestartPolicy {
	if !isInit && ephemeralSpec(pod, c.Name) != nil {
		return corev1.RestartPolicyNever
	}
	if isInit && isSidecar(c) {
		return corev1.RestartPolicyAlways
	}
	if isInit && pod.Spec.RestartPolicy == corev1.RestartPolicyAlways {
		return corev1.RestartPolicyOnFailure
	}
	return pod.Spec.RestartPolicy
}

func (k *Kubelet) terminated(c *corev1.Container, st *runtimeapi.ContainerStatus) *corev1.ContainerStateTerminated {
	t := &corev1.ContainerStateTerminated{
		ExitCode:    st.ExitCode,
		Reason:      st.Reason,
		Message:     st.Message,
		StartedAt:   metav1.NewTime(time.Unix(0, st.StartedAt)),
		FinishedAt:  metav1.NewTime(time.Unix(0, st.FinishedAt)),
		ContainerID: k.runtimeName() + "://" + st.Id,
	}
	if t.Reason == "" {
		t.Reason = "Error"
		if t.ExitCode == 0 {
			t.Reason = "Completed"
		}
	}
	if msg := readTerminationMessage(st.Annotations[annotationTermFile]); msg != "" {
		t.Message = msg
	} else if c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError && t.ExitCode != 0 {
		t.Message = tailLog(st.LogPath, 80, 2048)
	}
	return t
}

// readTerminationMessage reads at most 4096 bytes, as upstream.
func readTerminationMessage(path string) string {
	if path == "" {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 4096))
	return string(b)
}

// tailLog is the message text of the last lines of a CRI log file.
func tailLog(path string, lines, max int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	var b strings.Builder
	for _, l := range all {
		// "<time> <stream> <P|F> <text>"
		parts := strings.SplitN(l, " ", 4)
		if len(parts) == 4 {
			b.WriteString(parts[3])
			if parts[2] == "F" {
				b.WriteByte('\n')
			}
		}
	}
	s := b.String()
	if len(s) > max {
		s = s[len(s)-max:]
	}
	return s
}

// runtimeName prefixes container IDs ("containerd://<id>"), as the runtime
// named itself at registration.
func (k *Kubelet) runtimeName() string { return k.runtime }

// podPhase follows upstream's rules: Pending until the init containers are
// done and every container has started; Running while any runs or
// restarts; Succeeded or Failed once all have stopped for good.
func podPhase(pod *corev1.Pod, st *corev1.PodStatus, initDone bool) corev1.PodPhase {
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		return st.Phase // terminal phases never change
	}
	if !initDone {
		for i, cs := range st.InitContainerStatuses {
			if i < len(pod.Spec.InitContainers) && isSidecar(&pod.Spec.InitContainers[i]) {
				continue // restarts whatever the pod's policy
			}
			failed := (cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0)
			if failed && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
				return corev1.PodFailed
			}
		}
		return corev1.PodPending
	}
	var running, waiting, stopped, succeeded int
	for _, cs := range st.ContainerStatuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0:
		if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways {
			return corev1.PodRunning
		}
		if stopped == succeeded {
			return corev1.PodSucceeded
		}
		if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
		return corev1.PodRunning
	}
	return corev1.PodPending
}

// deletedPhase is the terminal phase of a pod whose containers the kubelet
// stopped because it was deleted: Succeeded only if all exited 0.
func deletedPhase(st *corev1.PodStatus) corev1.PodPhase {
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		return st.Phase
	}
	for _, cs := range st.ContainerStatuses {
		t := cs.State.Terminated
		if t == nil || t.ExitCode != 0 {
			return corev1.PodFailed
		}
	}
	return corev1.PodSucceeded
}

// setConditions sets the conditions the kubelet owns, as upstream's
// kubelet: PodScheduled (True: the pod is on this node),
// PodReadyToStartContainers, Initialized, ContainersReady and Ready, each
// with observedGeneration the pod's generation. It keeps the others
// (DisruptionTarget, readiness gates' own) as they are.
func (k *Kubelet) setConditions(pod *corev1.Pod, st *corev1.PodStatus, pr *podRuntime, initDone bool, now time.Time) {
	terminal := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	set := func(t corev1.PodConditionType, ok bool, reason, msg string) {
		status := corev1.ConditionFalse
		if ok {
			status = corev1.ConditionTrue
			reason, msg = "", ""
		}
		for i := range st.Conditions {
			c := &st.Conditions[i]
			if c.Type != t {
				continue
			}
			if c.Status != status {
				c.LastTransitionTime = metav1.NewTime(now.Truncate(time.Second))
			}
			c.Status, c.Reason, c.Message = status, reason, msg
			c.ObservedGeneration = pod.Generation
			return
		}
		st.Conditions = append(st.Conditions, corev1.PodCondition{
			Type: t, Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(now.Truncate(time.Second)),
			ObservedGeneration: pod.Generation,
		})
	}
	set(corev1.PodScheduled, true, "", "")
	set(corev1.PodReadyToStartContainers, pr.readySandbox() != nil && (len(pr.podIPs()) > 0 || pod.Spec.HostNetwork), "", "")

	var initPending []string
	if !initDone && !(terminal && st.Phase == corev1.PodSucceeded) {
		for i := range st.InitContainerStatuses {
			if !initComplete(&pod.Spec.InitContainers[i], &st.InitContainerStatuses[i]) {
				initPending = append(initPending, st.InitContainerStatuses[i].Name)
			}
		}
	}
	set(corev1.PodInitialized, len(initPending) == 0, "ContainersNotInitialized",
		fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(initPending, " ")))

	var unready []string
	for i, cs := range st.InitContainerStatuses {
		if isSidecar(&pod.Spec.InitContainers[i]) && !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	for _, cs := range st.ContainerStatuses {
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	reason, msg := "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	if terminal {
		reason, msg = "PodCompleted", ""
	}
	containersReady := len(unready) == 0 && !terminal
	set(corev1.ContainersReady, containersReady, reason, msg)

	ready, rReason, rMsg := containersReady, reason, msg
	if containersReady {
		var missing []string
		for _, g := range pod.Spec.ReadinessGates {
			found := false
			for _, c := range st.Conditions {
				if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
					found = true
				}
			}
			if !found {
				missing = append(missing, string(g.ConditionType))
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			ready, rReason = false, "ReadinessGatesNotReady"
			rMsg = fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but False", missing[0])
		}
	}
	set(corev1.PodReady, ready, rReason, rMsg)
}
