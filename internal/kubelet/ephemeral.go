package kubelet

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Ephemeral containers (`kubectl debug`) are added to a running pod
// through pods/ephemeralcontainers. As upstream's kubelet runs them, each
// starts once in the pod's ready sandbox — before the init containers, so
// that a pod stuck in initialization can be debugged — and is never
// restarted, whatever the pod's restartPolicy; nothing probes it, and
// neither the pod's phase nor its readiness depends on it. One naming a
// targetContainerName joins that container's process namespace (CRI's
// NamespaceMode TARGET) unless the pod already shares one. Its status is
// reported in status.ephemeralContainerStatuses; logs, exec and attach
// find it by name like any container, and it is stopped with the pod.

// ephemeralSpec is the ephemeral container of pod named name, or nil.
func ephemeralSpec(pod *corev1.Pod, name string) *corev1.EphemeralContainer {
	for i := range pod.Spec.EphemeralContainers {
		if ec := &pod.Spec.EphemeralContainers[i]; ec.Name == name {
			return ec
		}
	}
	return nil
}

// asContainer is ec seen as a Container (its fields are a Container's),
// pointing into ec.
func asContainer(ec *corev1.EphemeralContainer) *corev1.Container {
	return (*corev1.Container)(&ec.EphemeralContainerCommon)
}

// ephemeralContainers starts each ephemeral container the runtime has no
// instance of. One that has run, however it ended, is left alone.
func (r *podRun) ephemeralContainers(ctx context.Context) error {
	var errs []error
	for i := range r.pod.Spec.EphemeralContainers {
		c := asContainer(&r.pod.Spec.EphemeralContainers[i])
		if r.pr.latest(c.Name) != nil {
			continue
		}
		if err := r.start(ctx, c, nil); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// targetNamespace puts ephemeral container c, described by cfg, into the
// process namespace of its target container, as upstream does when the
// container would otherwise get a namespace of its own. Its error (no
// such container yet) is a CreateContainerConfigError: the next sync
// tries again.
func (r *podRun) targetNamespace(c *corev1.Container, cfg *runtimeapi.ContainerConfig) error {
	ec := ephemeralSpec(r.pod, c.Name)
	if ec == nil || ec.TargetContainerName == "" {
		return nil
	}
	ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if ns == nil || ns.Pid != runtimeapi.NamespaceMode_CONTAINER {
		return nil // the pod's or the host's namespace: the target's already
	}
	target := r.pr.latest(ec.TargetContainerName)
	if target == nil {
		return fmt.Errorf("unable to find target container %v", ec.TargetContainerName)
	}
	ns.Pid = runtimeapi.NamespaceMode_TARGET
	ns.TargetId = target.Id
	return nil
}

// ephemeralStatuses are the statuses of pod's ephemeral containers, in
// spec order: waiting, running or terminated as other containers', but
// never ready and without started, as upstream reports them.
func (k *Kubelet) ephemeralStatuses(pod *corev1.Pod, pr *podRuntime, stopped bool) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	for i := range pod.Spec.EphemeralContainers {
		cs := k.containerStatus(pod, asContainer(&pod.Spec.EphemeralContainers[i]), pr, false, stopped)
		cs.Started, cs.Ready = nil, false
		out = append(out, cs)
	}
	return out
}
