package kubelet

import (
	"context"
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-io/skiff/internal/kubelet/server"
)

// Pods lists the pods bound to this node, as the informer has them.
func (k *Kubelet) Pods() []*corev1.Pod {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(k.pods))
	for _, p := range k.pods {
		out = append(out, p)
	}
	return out
}

func (k *Kubelet) podByName(namespace, name string) *corev1.Pod {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, p := range k.pods {
		if p.Namespace == namespace && p.Name == name {
			return p
		}
	}
	return nil
}

// Container finds the runtime container of a pod's container: the newest
// instance, or with previous the one before it. The log path is absolute.
func (k *Kubelet) Container(namespace, pod, container string, previous bool) (id, logPath string, err error) {
	p := k.podByName(namespace, pod)
	if p == nil {
		return "", "", fmt.Errorf("pod %s/%s: %w", namespace, pod, server.ErrNotFound)
	}
	pr, err := k.runtimeState(context.Background(), p.UID)
	if err != nil {
		return "", "", err
	}
	inst := pr.instances(container)
	i := 0
	if previous {
		i = 1
	}
	if len(inst) <= i {
		if previous {
			return "", "", fmt.Errorf("previous terminated container %q in pod %q not found: %w", container, pod, server.ErrNotAvailable)
		}
		return "", "", fmt.Errorf("container %q in pod %q is not available: %w", container, pod, server.ErrNotAvailable)
	}
	c := inst[i]
	path := c.LogPath
	if path != "" && !filepath.IsAbs(path) {
		path = filepath.Join(k.podLogDir(p), path)
	}
	return c.Id, path, nil
}

// SandboxID is the ready sandbox of a pod, for port-forwarding.
func (k *Kubelet) SandboxID(namespace, pod string) (string, error) {
	p := k.podByName(namespace, pod)
	if p == nil {
		return "", fmt.Errorf("pod %s/%s: %w", namespace, pod, server.ErrNotFound)
	}
	pr, err := k.runtimeState(context.Background(), p.UID)
	if err != nil {
		return "", err
	}
	sb := pr.readySandbox()
	if sb == nil {
		return "", fmt.Errorf("pod %s/%s has no running sandbox: %w", namespace, pod, server.ErrNotAvailable)
	}
	return sb.Id, nil
}
