package job

import (
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Upstream's pod failure back-off (DefaultJobPodFailureBackOff and
// MaxJobPodFailureBackOff in k8s.io/kubernetes/pkg/controller/job): after
// n failures since the last success, the next pod is created no sooner
// than DefaultPodFailureBackoff × 2^(n-1), capped at MaxPodFailureBackoff,
// after the last failure finished. Upstream's documentation says "capped
// at six minutes"; its code (1.37) caps at ten, and we follow the code.
const (
	DefaultPodFailureBackoff = 10 * time.Second
	MaxPodFailureBackoff     = 10 * time.Minute
)

// backoffRecord is what the back-off needs to know of a Job's history: how
// many of its pods failed since the last one succeeded, and when the last
// of those failures finished (zero when failures is 0).
type backoffRecord struct {
	failures    int32
	lastFailure time.Time
}

// update returns the record after newly finished pods: a success resets
// the count to the failures that finished after the latest success; with
// no success the failures add up. Failures matched by an Ignore rule of a
// podFailurePolicy count here as well, as upstream counts them: they do
// not use up backoffLimit, but they do slow the retries down.
func (r backoffRecord) update(succeeded, failed []*corev1.Pod) backoffRecord {
	if len(succeeded) == 0 {
		for _, p := range failed {
			r.failures++
			if t := finishTime(p); t.After(r.lastFailure) {
				r.lastFailure = t
			}
		}
		return r
	}
	var lastSuccess time.Time
	for _, p := range succeeded {
		if t := finishTime(p); t.After(lastSuccess) {
			lastSuccess = t
		}
	}
	r = backoffRecord{}
	for _, p := range failed {
		if t := finishTime(p); t.After(lastSuccess) {
			r.failures++
			if t.After(r.lastFailure) {
				r.lastFailure = t
			}
		}
	}
	return r
}

// remaining is how long after now a new pod must still wait.
func (r backoffRecord) remaining(now time.Time, base, limit time.Duration) time.Duration {
	return backoffRemaining(r.failures, r.lastFailure, now, base, limit)
}

// backoffRemaining is what is left at now of the back-off after failures
// failures, the last of which finished at last: base doubled for each
// failure after the first, capped at limit.
func backoffRemaining(failures int32, last, now time.Time, base, limit time.Duration) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := base
	for i := int32(1); i < failures && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return max(d-now.Sub(last), 0)
}

// finishTime is when a pod finished, as upstream estimates it: the latest
// finish of its containers (and sidecars) once all have terminated, else
// when its Ready condition turned False, else when its deletion started
// (less the grace period), else its creation.
func finishTime(p *corev1.Pod) time.Time {
	if t, ok := containersFinished(p); ok {
		return t
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionFalse && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	if p.DeletionTimestamp != nil {
		var grace time.Duration
		if p.DeletionGracePeriodSeconds != nil {
			grace = time.Duration(*p.DeletionGracePeriodSeconds) * time.Second
		}
		return p.DeletionTimestamp.Add(-grace)
	}
	return p.CreationTimestamp.Time
}

// containersFinished is the latest finish time of the pod's containers and
// sidecars (restartable init containers), if every one of them has a
// terminated state with a finish time.
func containersFinished(p *corev1.Pod) (time.Time, bool) {
	var latest time.Time
	check := func(s corev1.ContainerStatus) bool {
		t := s.State.Terminated
		if t == nil || t.FinishedAt.IsZero() {
			return false
		}
		if t.FinishedAt.After(latest) {
			latest = t.FinishedAt.Time
		}
		return true
	}
	for _, s := range p.Status.ContainerStatuses {
		if !check(s) {
			return time.Time{}, false
		}
	}
	for _, s := range p.Status.InitContainerStatuses {
		sidecar := slices.ContainsFunc(p.Spec.InitContainers, func(c corev1.Container) bool {
			return c.Name == s.Name && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		})
		if sidecar && !check(s) {
			return time.Time{}, false
		}
	}
	if len(p.Status.ContainerStatuses) == 0 {
		return time.Time{}, false
	}
	return latest, true
}
