package kubelet

import (
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/types"
)

// cgroupRoot is where the cgroupfs hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

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
