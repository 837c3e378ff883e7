package scheduler

import (
	v1 "k8s.io/api/core/v1"
)

// resizeAwareRequests is what a pod holds on its node while an in-place
// resize (pods/resize) is under way, as upstream's scheduler counts it:
// per resource, the largest of what the spec asks for, what the kubelet
// allocated (status.containerStatuses[].allocatedResources) and what the
// containers run with (.resources.requests). A resize the kubelet found
// Infeasible does not count: its spec is left out.
func resizeAwareRequests(pod *v1.Pod) (req resources, nonZeroCPU, nonZeroMem int64) {
	if statusMatchesSpec(pod) {
		return podRequests(&pod.Spec) // no resize under way: the common case
	}
	infeasible := false
	for _, c := range pod.Status.Conditions {
		if c.Type == v1.PodResizePending {
			infeasible = c.Reason == v1.PodReasonInfeasible
			break
		}
	}
	first := true
	take := func(spec *v1.PodSpec) {
		r, cpu, mem := podRequests(spec)
		if first {
			req, nonZeroCPU, nonZeroMem, first = r, cpu, mem, false
			return
		}
		req.setMax(&r)
		nonZeroCPU, nonZeroMem = max(nonZeroCPU, cpu), max(nonZeroMem, mem)
	}
	if !infeasible {
		take(&pod.Spec)
	}
	take(statusSpec(pod, func(cs *v1.ContainerStatus) v1.ResourceList { return cs.AllocatedResources }))
	take(statusSpec(pod, func(cs *v1.ContainerStatus) v1.ResourceList {
		if cs.Resources != nil && cs.Resources.Requests != nil {
			return cs.Resources.Requests
		}
		return cs.AllocatedResources
	}))
	return req, nonZeroCPU, nonZeroMem
}

// statusMatchesSpec reports that every container status reports the
// requests of the spec (or none), without allocating.
func statusMatchesSpec(pod *v1.Pod) bool {
	for _, list := range [][]v1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for i := range list {
			cs := &list[i]
			if cs.AllocatedResources == nil && (cs.Resources == nil || cs.Resources.Requests == nil) {
				continue
			}
			spec := specRequests(pod, cs.Name)
			if cs.AllocatedResources != nil && !sameList(cs.AllocatedResources, spec) {
				return false
			}
			if cs.Resources != nil && cs.Resources.Requests != nil && !sameList(cs.Resources.Requests, spec) {
				return false
			}
		}
	}
	return true
}

func specRequests(pod *v1.Pod, name string) v1.ResourceList {
	for _, cs := range [][]v1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range cs {
			if cs[i].Name == name {
				return cs[i].Resources.Requests
			}
		}
	}
	return nil
}

func sameList(a, b v1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for name, q := range a {
		o, ok := b[name]
		if !ok || q.Cmp(o) != 0 {
			return false
		}
	}
	return true
}

// statusSpec is a copy of pod's spec whose container requests are those
// reported in its status by get, where the status has them (the spec's
// elsewhere; the spec's when the pod has no resize to account for).
func statusSpec(pod *v1.Pod, get func(*v1.ContainerStatus) v1.ResourceList) *v1.PodSpec {
	byName := map[string]v1.ResourceList{}
	for _, list := range [][]v1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for i := range list {
			if rl := get(&list[i]); rl != nil {
				byName[list[i].Name] = rl
			}
		}
	}
	spec := pod.Spec
	spec.Containers = withRequests(pod.Spec.Containers, byName)
	spec.InitContainers = withRequests(pod.Spec.InitContainers, byName)
	return &spec
}

func withRequests(cs []v1.Container, byName map[string]v1.ResourceList) []v1.Container {
	if len(cs) == 0 {
		return cs
	}
	out := make([]v1.Container, len(cs))
	copy(out, cs)
	for i := range out {
		if rl, ok := byName[out[i].Name]; ok {
			out[i].Resources.Requests = rl
		}
	}
	return out
}
