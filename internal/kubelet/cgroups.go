package kubelet

import (
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-io/skiff/internal/kubelet/cgroup"
)

// cgroupRoot is where the cgroupfs hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// removePodCgroups removes the pod-level cgroup directories runc leaves
// behind, in every hierarchy (cgroup v1 controllers and the v2 unified
// tree). Directories that are gone or still busy are left alone.
func removePodCgroups(root string, uid types.UID) {
	name := "pod" + string(uid)
	hierarchies, _ := filepath.Glob(filepath.Join(cgroupRoot, "*"))
	hierarchies = append(hierarchies, cgroupRoot)
	for _, h := range hierarchies {
		for _, qos := range cgroup.QOSDirs {
			_ = os.Remove(filepath.Join(h, root, "kubepods", qos, name))
		}
	}
}
