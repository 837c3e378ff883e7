package kubelet

import (
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// cgroupRoot is where the cgroupfs hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupParent is the pod's cgroup under the cgroupfs driver, laid out as
// upstream's: /kubepods/pod<uid> for Guaranteed pods, else
// /kubepods/<qos>/pod<uid>. runc creates it; removePodCgroups removes it.
func cgroupParent(pod *corev1.Pod) string {
	switch pod.Status.QOSClass {
	case corev1.PodQOSGuaranteed:
		return "/kubepods/pod" + string(pod.UID)
	case corev1.PodQOSBestEffort:
		return "/kubepods/besteffort/pod" + string(pod.UID)
	}
	return "/kubepods/burstable/pod" + string(pod.UID)
}

// removePodCgroups removes the pod-level cgroup directories runc leaves
// behind, in every hierarchy (cgroup v1 controllers and the v2 unified
// tree). Directories that are gone or still busy are left alone.
func removePodCgroups(uid types.UID) {
	name := "pod" + string(uid)
	hierarchies, _ := filepath.Glob(filepath.Join(cgroupRoot, "*"))
	hierarchies = append(hierarchies, cgroupRoot)
	for _, h := range hierarchies {
		for _, qos := range []string{"", "burstable", "besteffort"} {
			_ = os.Remove(filepath.Join(h, "kubepods", qos, name))
		}
	}
}
