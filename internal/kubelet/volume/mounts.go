package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-io/skiff/internal/kubelet/envvars/expansion"
)

// Mounts turns c's volumeMounts into CRI mounts, in order. env is the
// container's resolved environment, used to expand subPathExpr (a reference
// to a missing or empty variable is an error, as upstream). configMap,
// secret, downwardAPI and projected volumes are always mounted read-only,
// and so is a persistentVolumeClaim the pod's volume source says readOnly.
// A subPath is resolved inside the volume (created as a directory when
// missing, except in a read-only claim, which the kubelet does not write
// either) and must not leave it through `..` or a symlink. SetUp must have
// run for the pod first.
func (m *Manager) Mounts(pod *v1.Pod, c *v1.Container, env map[string]string) ([]*runtimeapi.Mount, error) {
	vols := make(map[string]*v1.Volume, len(pod.Spec.Volumes))
	for i := range pod.Spec.Volumes {
		vols[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	out := make([]*runtimeapi.Mount, 0, len(c.VolumeMounts))
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("cannot find volume %q to mount into container %q", vm.Name, c.Name)
		}
		hostPath, mustRO, err := m.hostPathOf(pod, v)
		if err != nil {
			return nil, fmt.Errorf("volume %q of container %q: %w", vm.Name, c.Name, err)
		}

		subPath := vm.SubPath
		if vm.SubPathExpr != "" {
			if subPath, err = expandSubPath(vm.SubPathExpr, env); err != nil {
				return nil, err
			}
		}
		if subPath != "" {
			if filepath.IsAbs(subPath) {
				return nil, fmt.Errorf("error SubPath `%s` must not be an absolute path", subPath)
			}
			for _, seg := range strings.Split(subPath, "/") {
				if seg == ".." {
					return nil, fmt.Errorf("unable to provision SubPath `%s`: must not contain '..'", subPath)
				}
			}
			var resolved string
			if v.Image != nil {
				resolved, err = resolveImageSubPath(hostPath, subPath)
			} else {
				// Upstream's read-only bind mount of a claim refuses the mkdir.
				create := v.PersistentVolumeClaim == nil || !mustRO
				resolved, err = resolveSubPath(hostPath, subPath, create)
			}
			if err != nil {
				m.log.Error("subPath preparation failed", "pod", pod.Namespace+"/"+pod.Name,
					"container", c.Name, "volumeMount", vm.Name, "err", err)
				// Like upstream, the detail (host paths) stays in the log.
				return nil, fmt.Errorf("failed to prepare subPath for volumeMount %q of container %q", vm.Name, c.Name)
			}
			hostPath = resolved
		}

		prop, err := propagation(vm.MountPropagation)
		if err != nil {
			return nil, err
		}
		if vm.RecursiveReadOnly != nil && *vm.RecursiveReadOnly == v1.RecursiveReadOnlyEnabled {
			return nil, fmt.Errorf("volumeMount %q of container %q: recursive read-only mounts are not supported by skiff", vm.Name, c.Name)
		}
		out = append(out, &runtimeapi.Mount{
			ContainerPath:  vm.MountPath,
			HostPath:       hostPath,
			Readonly:       vm.ReadOnly || mustRO,
			SelinuxRelabel: false,
			Propagation:    prop,
		})
	}
	return out, nil
}

// hostPathOf is where a volume lives on the node, and whether it must be
// mounted read-only.
func (m *Manager) hostPathOf(pod *v1.Pod, v *v1.Volume) (string, bool, error) {
	switch {
	case v.EmptyDir != nil:
		return m.volumeDir(pod.UID, kindEmptyDir, v.Name), false, nil
	case v.HostPath != nil:
		return v.HostPath.Path, false, nil
	case v.PersistentVolumeClaim != nil:
		bc, ok := m.claim(pod.UID, v.Name)
		if !ok {
			return "", false, fmt.Errorf("persistentVolumeClaim %q is not set up", v.PersistentVolumeClaim.ClaimName)
		}
		return bc.path, bc.readOnly, nil
	case v.ConfigMap != nil:
		return m.volumeDir(pod.UID, kindConfigMap, v.Name), true, nil
	case v.Secret != nil:
		return m.volumeDir(pod.UID, kindSecret, v.Name), true, nil
	case v.DownwardAPI != nil:
		return m.volumeDir(pod.UID, kindDownwardAPI, v.Name), true, nil
	case v.Projected != nil:
		return m.volumeDir(pod.UID, kindProjected, v.Name), true, nil
	case v.Image != nil:
		dir, err := m.imageVolumePath(pod, v)
		return dir, true, err
	}
	return "", false, fmt.Errorf("volume type %s is not supported by skiff", sourceKind(v))
}

// expandSubPath expands a subPathExpr; every referenced variable must be
// set and non-empty ("missing value for A, B" otherwise, as upstream).
func expandSubPath(expr string, env map[string]string) (string, error) {
	missing := map[string]struct{}{}
	out := expansion.Expand(expr, func(name string) string {
		v, ok := env[name]
		if !ok || v == "" {
			missing[name] = struct{}{}
		}
		return v
	})
	if len(missing) > 0 {
		names := make([]string, 0, len(missing))
		for n := range missing {
			names = append(names, n)
		}
		sort.Strings(names)
		return "", fmt.Errorf("missing value for %s", strings.Join(names, ", "))
	}
	return out, nil
}

// resolveSubPath walks subPath inside volPath one element at a time,
// creating missing elements as directories (with the volume's mode) when
// create is set, and following symlinks only while they stay inside the
// volume. It returns the resolved host path.
func resolveSubPath(volPath, subPath string, create bool) (string, error) {
	root, err := filepath.EvalSymlinks(volPath)
	if err != nil {
		return "", fmt.Errorf("resolve volume path %s: %w", volPath, err)
	}
	info, err := os.Stat(root)
	if err != nil {
		return "", err
	}
	perm := info.Mode().Perm()
	cur := root
	for _, seg := range strings.Split(filepath.Clean(subPath), "/") {
		if seg == "" || seg == "." {
			continue
		}
		next := filepath.Join(cur, seg)
		if _, err := os.Lstat(next); errors.Is(err, fs.ErrNotExist) {
			if !create {
				return "", fmt.Errorf("subPath element %s does not exist in a read-only volume", next)
			}
			if err := os.Mkdir(next, perm); err != nil && !errors.Is(err, fs.ErrExist) {
				return "", fmt.Errorf("create subPath element %s: %w", next, err)
			}
			// Mkdir applies the umask; give it the volume's mode.
			if err := os.Chmod(next, perm); err != nil {
				return "", err
			}
		} else if err != nil {
			return "", err
		}
		resolved, err := filepath.EvalSymlinks(next)
		if err != nil {
			return "", fmt.Errorf("resolve subPath element %s: %w", next, err)
		}
		if resolved != root && !strings.HasPrefix(resolved, root+"/") {
			return "", fmt.Errorf("subpath %q not within volume path %q", resolved, root)
		}
		cur = resolved
	}
	return cur, nil
}

// propagation maps a volumeMount's mountPropagation to CRI's.
func propagation(mode *v1.MountPropagationMode) (runtimeapi.MountPropagation, error) {
	switch {
	case mode == nil, *mode == v1.MountPropagationNone:
		return runtimeapi.MountPropagation_PROPAGATION_PRIVATE, nil
	case *mode == v1.MountPropagationHostToContainer:
		return runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, nil
	case *mode == v1.MountPropagationBidirectional:
		return runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL, nil
	}
	return 0, fmt.Errorf("invalid MountPropagation mode: %q", *mode)
}
