package kubelet

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Pod admission. Before it runs a pod for the first time the kubelet checks
// it against the pods it has already accepted, as upstream's kubelet does,
// and rejects a pod that cannot run beside them: its status becomes phase
// Failed with the failed check as reason and "Pod was rejected: ..." as
// message, a Warning event says the same, and the pod is never run. Its
// controller replaces it (a StatefulSet deletes and recreates a Failed
// pod), and a bare pod stays Failed.
//
// Upstream's kubelet re-runs the scheduler's general predicates (host
// ports, resources, node name, node affinity, NoExecute taints); skiff's
// checks host ports, the one conflict that pods bound without the
// scheduler (spec.nodeName set by their author) run into and that the
// runtime would not report: two sandboxes with the same host port both
// start, and one silently loses its traffic.
const (
	// reasonNodePorts is upstream's reason (the scheduler plugin's name).
	reasonNodePorts = "NodePorts"
	// msgNodePorts is upstream's message for it.
	msgNodePorts = "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
)

// admitted reports whether the kubelet accepted pod before: it has a
// sandbox or a container, or this kubelet has written its status (every
// status write sets startTime, and only an admitted or rejected pod gets
// one; a rejected pod is Failed and never gets here).
func admitted(pod *corev1.Pod, pr *podRuntime) bool {
	return len(pr.sandboxes) > 0 || len(pr.containers) > 0 || pod.Status.StartTime != nil
}

// admissionFailure returns why pod may not run beside others, the other
// pods bound to the node, or "" when it may. A pod holds its host ports
// while it is not in a terminal phase (being deleted included: its
// containers may still run) and either has been admitted or was created
// before pod: of two new pods that want the same port the older wins,
// whichever the kubelet syncs first.
func admissionFailure(pod *corev1.Pod, others []*corev1.Pod) (reason, message string) {
	want := hostPortsOf(pod)
	if len(want) == 0 {
		return "", ""
	}
	for _, o := range others {
		if o.UID == pod.UID || terminalPhase(o.Status.Phase) {
			continue
		}
		if o.Status.StartTime == nil && !createdBefore(o, pod) {
			continue
		}
		for _, used := range hostPortsOf(o) {
			for _, w := range want {
				if w.conflicts(used) {
					return reasonNodePorts, msgNodePorts
				}
			}
		}
	}
	return "", ""
}

// createdBefore orders pods by creation time, then by UID.
func createdBefore(a, b *corev1.Pod) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.UID < b.UID
}

// hostPort is one host port a pod asks for.
type hostPort struct {
	ip       string // "", "0.0.0.0" and "::" mean every address
	protocol corev1.Protocol
	port     int32
}

func (a hostPort) conflicts(b hostPort) bool {
	if a.port != b.port || a.protocol != b.protocol {
		return false
	}
	return a.ip == b.ip || anyAddress(a.ip) || anyAddress(b.ip)
}

func anyAddress(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }

// hostPortsOf lists the host ports of pod's containers and of its
// sidecars (restartable init containers run as long as the pod); other
// init containers have exited before the pod runs, as upstream counts.
func hostPortsOf(pod *corev1.Pod) []hostPort {
	var out []hostPort
	add := func(ports []corev1.ContainerPort) {
		for _, p := range ports {
			if p.HostPort <= 0 {
				continue
			}
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			out = append(out, hostPort{ip: p.HostIP, protocol: proto, port: p.HostPort})
		}
	}
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; isSidecar(c) {
			add(c.Ports)
		}
	}
	for i := range pod.Spec.Containers {
		add(pod.Spec.Containers[i].Ports)
	}
	return out
}

// admit checks a pod the kubelet has not run yet and rejects it when it
// may not run. It reports whether the pod may run.
func (k *Kubelet) admit(ctx context.Context, pod *corev1.Pod, pr *podRuntime) (bool, error) {
	if admitted(pod, pr) {
		return true, nil
	}
	reason, message := admissionFailure(pod, k.otherPods(pod))
	if reason == "" {
		return true, nil
	}
	k.recorder.Event(pod, corev1.EventTypeWarning, reason, message)
	k.log.Info("pod rejected", "pod", klogRef(pod), "reason", reason)
	upd := pod.DeepCopy()
	upd.Status = rejectedStatus(pod, reason, message, k.cfg.NodeIP, metav1.Now())
	if _, err := k.cfg.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return false, fmt.Errorf("rejecting pod %s: %w", klogRef(pod), err)
	}
	return false, nil
}

// rejectedStatus is the status of a pod the kubelet refused to run: phase
// Failed, upstream's reason and message, the pod's other fields kept.
func rejectedStatus(pod *corev1.Pod, reason, message, nodeIP string, now metav1.Time) corev1.PodStatus {
	st := *pod.Status.DeepCopy()
	st.ObservedGeneration = pod.Generation
	st.Phase = corev1.PodFailed
	st.Reason = reason
	st.Message = "Pod was rejected: " + message
	if st.StartTime == nil {
		st.StartTime = &now
	}
	if nodeIP != "" {
		st.HostIP = nodeIP
		st.HostIPs = []corev1.HostIP{{IP: nodeIP}}
	}
	return st
}

// otherPods is every pod the kubelet knows on its node except pod.
func (k *Kubelet) otherPods(pod *corev1.Pod) []*corev1.Pod {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(k.pods))
	for uid, p := range k.pods {
		if uid != pod.UID {
			out = append(out, p)
		}
	}
	return out
}
