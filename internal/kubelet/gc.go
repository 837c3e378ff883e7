package kubelet

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// collectGarbage removes what a live pod no longer needs from the runtime:
// container instances older than the previous one (the current and the
// last are kept, for status and `kubectl logs --previous`), and stopped
// sandboxes other than the newest once nothing of them is left.
func (k *Kubelet) collectGarbage(ctx context.Context, pod *corev1.Pod, pr *podRuntime) error {
	names := map[string]bool{}
	for _, c := range pr.containers {
		names[c.GetMetadata().GetName()] = true
	}
	inUse := map[string]bool{}
	for name := range names {
		for i, c := range pr.instances(name) {
			if i < 2 || isRunning(c) {
				inUse[c.Id] = true
				continue
			}
			if err := k.cfg.Runtime.RemoveContainer(ctx, c.Id); err != nil && !isNotFound(err) {
				return fmt.Errorf("removing old container %s of pod %s: %w", c.Id, klogRef(pod), err)
			}
		}
	}
	listed, err := k.cfg.Runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: map[string]string{labelPodUID: string(pod.UID)}})
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, c := range listed {
		if inUse[c.Id] {
			used[c.PodSandboxId] = true
		}
	}
	for i, sb := range pr.sandboxes {
		if i == 0 || sb.State == runtimeapi.PodSandboxState_SANDBOX_READY || used[sb.Id] {
			continue
		}
		if err := k.cfg.Runtime.RemovePodSandbox(ctx, sb.Id); err != nil && !isNotFound(err) {
			return fmt.Errorf("removing old sandbox %s of pod %s: %w", sb.Id, klogRef(pod), err)
		}
	}
	return nil
}
