package volume

import (
	"fmt"
	"os"
	"path/filepath"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// setUpEmptyDir creates an emptyDir: a plain directory, or for medium
// Memory a tmpfs sized as memoryVolumeSize says. Without the privilege to
// mount, a Memory emptyDir falls back to a plain directory with a warning.
// With a pod fsGroup the directory then gets the group, read-write, once.
func (m *Manager) setUpEmptyDir(pod *v1.Pod, v *v1.Volume) error {
	dir := m.volumeDir(pod.UID, kindEmptyDir, v.Name)
	var err error
	switch v.EmptyDir.Medium {
	case v1.StorageMediumDefault:
		err = m.ensureDir(dir, false, 0)
	case v1.StorageMediumMemory:
		if !m.tmpfs {
			m.log.Warn("emptyDir medium Memory without privilege to mount tmpfs; using a plain directory",
				"pod", pod.Namespace+"/"+pod.Name, "volume", v.Name)
		}
		err = m.ensureDir(dir, true, m.memoryVolumeSize(pod, v.EmptyDir.SizeLimit))
	default:
		return fmt.Errorf("emptyDir medium %q is not supported by skiff", v.EmptyDir.Medium)
	}
	if err != nil {
		return err
	}
	return m.emptyDirFSGroup(pod, v.Name, dir)
}

// emptyDirFSGroup gives an emptyDir the pod's fsGroup as upstream's
// emptyDir plugin does at its set-up: once, so that the files containers
// write later keep the modes they were given. The record is a file under
// the pod's plugins directory, where upstream keeps its "ready" mark.
func (m *Manager) emptyDirFSGroup(pod *v1.Pod, name, dir string) error {
	g := fsGroupOf(pod)
	if g == nil {
		return nil
	}
	done := filepath.Join(m.PodDir(pod.UID), "plugins", kindEmptyDir, name, "ownership-applied")
	if pathExists(done) {
		return nil
	}
	if err := setVolumeOwnership(dir, *g, nil, false, m.log); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(done), 0o750); err != nil {
		return err
	}
	return os.WriteFile(done, nil, 0o600)
}

// memoryVolumeSize is the size of a memory-backed volume, as upstream
// computes it: the node's allocatable memory, lowered to the pod's memory
// limit when every container has one, lowered to sizeLimit when it is set
// and smaller. 0 means unknown (the tmpfs default, half of RAM).
func (m *Manager) memoryVolumeSize(pod *v1.Pod, sizeLimit *resource.Quantity) int64 {
	var size int64
	if q, ok := m.nodeAllocatable()[v1.ResourceMemory]; ok {
		size = q.Value()
	}
	if lim := podMemoryLimit(pod); lim > 0 && (size == 0 || lim < size) {
		size = lim
	}
	if sizeLimit != nil {
		if v := sizeLimit.Value(); v > 0 && (size == 0 || v <= size) {
			size = v
		}
	}
	return size
}

// podMemoryLimit is the pod's effective memory limit: the sum over its
// containers and sidecars, at least the largest init container's, plus
// overhead; 0 when a container has no limit (the pod is then unbounded).
func podMemoryLimit(pod *v1.Pod) int64 {
	var sum int64
	for _, c := range pod.Spec.Containers {
		q, ok := c.Resources.Limits[v1.ResourceMemory]
		if !ok || q.IsZero() {
			return 0
		}
		sum += q.Value()
	}
	var maxInit int64
	for _, c := range pod.Spec.InitContainers {
		q, ok := c.Resources.Limits[v1.ResourceMemory]
		if !ok || q.IsZero() {
			return 0
		}
		if c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways {
			sum += q.Value()
		} else if q.Value() > maxInit {
			maxInit = q.Value()
		}
	}
	if maxInit > sum {
		sum = maxInit
	}
	if q, ok := pod.Spec.Overhead[v1.ResourceMemory]; ok && sum > 0 {
		sum += q.Value()
	}
	return sum
}
