// Package cgroup is the pod cgroup layout the kubelet gives runc, shared by
// the kubelet, which creates and removes the cgroups, and its server,
// whose /metrics/cadvisor names series by them.
package cgroup

import (
	"path"

	corev1 "k8s.io/api/core/v1"
)

// PodParent is the pod's cgroup under the cgroupfs driver, laid out as
// upstream's below root (its --cgroup-root, "/" by default; "" is "/"):
// <root>/kubepods/pod<uid> for Guaranteed pods, else
// <root>/kubepods/<qos>/pod<uid>. Two kubelets on one machine keep their
// pods apart with a root each.
func PodParent(root string, pod *corev1.Pod) string {
	return path.Join("/", root, "kubepods", qosDir(pod.Status.QOSClass), "pod"+string(pod.UID))
}

// QOSDirs are the directories below <root>/kubepods a pod cgroup may be in.
var QOSDirs = []string{"", "burstable", "besteffort"}

func qosDir(q corev1.PodQOSClass) string {
	switch q {
	case corev1.PodQOSGuaranteed:
		return ""
	case corev1.PodQOSBestEffort:
		return "besteffort"
	}
	return "burstable"
}
