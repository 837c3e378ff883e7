package core

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// podQOSClass computes a pod's quality-of-service class as upstream does,
// from cpu and memory only: BestEffort with no requests or limits at all,
// Guaranteed when every container limits both and requests equal limits,
// Burstable otherwise. Pod-level resources, when set, decide alone.
//
// A request that is missing where a limit is set counts as equal to the
// limit: upstream defaults it so before computing the class, and this lets
// the class be computed before or after defaulting.
func podQOSClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	var sets [][2]corev1.ResourceList
	if spec.Resources != nil && hasCPUOrMemory(spec.Resources) {
		sets = append(sets, [2]corev1.ResourceList{spec.Resources.Requests, spec.Resources.Limits})
	} else {
		for _, cs := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
			for i := range cs {
				sets = append(sets, [2]corev1.ResourceList{cs[i].Resources.Requests, cs[i].Resources.Limits})
			}
		}
	}
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	for _, rl := range sets {
		req, lim := rl[0], rl[1]
		effective := corev1.ResourceList{}
		for name, q := range lim {
			effective[name] = q
		}
		for name, q := range req {
			effective[name] = q
		}
		for name, q := range effective {
			if qosResource(name) && q.Sign() > 0 {
				addQuantity(requests, name, q)
			}
		}
		found := 0
		for name, q := range lim {
			if qosResource(name) && q.Sign() > 0 {
				found++
				addQuantity(limits, name, q)
			}
		}
		if found < 2 {
			guaranteed = false
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	if guaranteed {
		for name, req := range requests {
			if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
				guaranteed = false
				break
			}
		}
	}
	if guaranteed && len(requests) == len(limits) {
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

func hasCPUOrMemory(r *corev1.ResourceRequirements) bool {
	for _, l := range []corev1.ResourceList{r.Requests, r.Limits} {
		for name := range l {
			if qosResource(name) {
				return true
			}
		}
	}
	return false
}

func qosResource(name corev1.ResourceName) bool {
	return name == corev1.ResourceCPU || name == corev1.ResourceMemory
}

func addQuantity(l corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
	sum := q.DeepCopy()
	if prev, ok := l[name]; ok {
		sum.Add(prev)
	}
	l[name] = sum
}
