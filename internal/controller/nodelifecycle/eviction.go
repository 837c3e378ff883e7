package nodelifecycle

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// evictionTime decides when a pod with tolerations must leave a node with
// taints (upstream's taint-eviction controller). Only NoExecute taints
// count. It returns false when the pod may stay for good: no NoExecute
// taint, or each tolerated by a toleration without tolerationSeconds.
// Otherwise it returns the time to evict: the zero time (now) when some
// taint is not tolerated; else, over the taints, the earliest of the
// taint's timeAdded plus the smallest tolerationSeconds among the
// tolerations that tolerate it. since gives the start of a taint that has
// no timeAdded.
func evictionTime(taints []corev1.Taint, tolerations []corev1.Toleration, since func(corev1.Taint) time.Time) (bool, time.Time) {
	var at time.Time
	evict := false
	for i := range taints {
		t := &taints[i]
		if t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		tolerated := false
		var minSeconds *int64
		for j := range tolerations {
			tol := &tolerations[j]
			if !tol.ToleratesTaint(klog.Background(), t, true) {
				continue
			}
			tolerated = true
			if s := tol.TolerationSeconds; s != nil && (minSeconds == nil || *s < *minSeconds) {
				minSeconds = s
			}
		}
		if !tolerated {
			return true, time.Time{}
		}
		if minSeconds == nil {
			continue // tolerated for good
		}
		start := time.Time{}
		if t.TimeAdded != nil {
			start = t.TimeAdded.Time
		} else if since != nil {
			start = since(*t)
		}
		when := start.Add(time.Duration(max(*minSeconds, 0)) * time.Second)
		if !evict || when.Before(at) {
			at = when
		}
		evict = true
	}
	return evict, at
}
