// Package cgroup is the pod cgroup layout the kubelet gives runc, shared by
// the kubelet, which creates and removes the cgroups, and its server,
// whose /metrics/cadvisor names series by them.
package cgroup

import corev1 "k8s.io/api/core/v1"

// PodParent is the pod's cgroup under the cgroupfs driver, laid out as
// upstream's: /kubepods/pod<uid> for Guaranteed pods, else
// /kubepods/<qos>/pod<uid>.
func PodParent(pod *corev1.Pod) string {
	switch pod.Status.QOSClass {
	case corev1.PodQOSGuaranteed:
		return "/kubepods/pod" + string(pod.UID)
	case corev1.PodQOSBestEffort:
		return "/kubepods/besteffort/pod" + string(pod.UID)
	}
	return "/kubepods/burstable/pod" + string(pod.UID)
}
