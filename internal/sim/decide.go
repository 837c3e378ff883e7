package sim

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// podAction is the status write (or deletion) a pod needs next.
type podAction int

const (
	actNone      podAction = iota
	actDelete              // terminating: delete for real
	actStart               // report Running (and Ready unless failing)
	actComplete            // containers exit: Succeeded or Failed
	actCrash               // failing containers exit 1 and restart
	actReadiness           // recompute Ready (readiness gates changed)
)

func (a podAction) String() string {
	return [...]string{"none", "delete", "start", "complete", "crash", "readiness"}[a]
}

// podTimes are when the simulator first saw a pod, started it and last
// crashed its failing containers, as it remembers them (precise, unlike
// the status times, which the API keeps to the second). A zero time is
// unknown, e.g. after the simulator restarts; the status is used then.
type podTimes struct {
	seen, started, crashed time.Time
}

// timing is the part of Config that nextAction reads.
type timing struct {
	startDelay, runTime time.Duration
	runPods             bool
}

// nextAction decides what a pod bound to a live simulated node needs at
// now. It returns the action due now, or actNone and how long until the
// next action falls due (0: nothing until the pod changes).
//
// The life of a pod:
//   - terminating (deletionTimestamp set): deleted at once, grace 0.
//   - Pending: started StartDelay after the simulator first saw it.
//   - restartPolicy Never: completes RunTime after it started; Failed if a
//     container image contains "fail", else Succeeded.
//   - restartPolicy OnFailure: as Never when nothing fails; a failing pod
//     crash-loops as under Always (the kubelet restarts a container that
//     exits non-zero), it never reaches Failed.
//   - restartPolicy Always: runs until deleted. A failing pod stays
//     Running and never Ready, and its failing containers exit 1 and
//     restart after RunTime, then after doubling delays (up to 5 min), so
//     restartCount grows as in a crash loop.
func nextAction(pod *corev1.Pod, tm podTimes, t timing, now time.Time) (podAction, time.Duration) {
	if pod == nil {
		return actNone, 0
	}
	if pod.DeletionTimestamp != nil {
		return actDelete, 0
	}
	if !t.runPods {
		return actNone, 0
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		return actNone, 0
	case corev1.PodRunning:
	default:
		seen := tm.seen
		if seen.IsZero() {
			seen = now
		}
		return due(seen.Add(t.startDelay), now, actStart)
	}
	started := tm.started
	if started.IsZero() {
		started = now
		if st := pod.Status.StartTime; st != nil {
			started = st.Time
		}
	}
	fails := podFails(pod)
	policy := pod.Spec.RestartPolicy
	if policy == corev1.RestartPolicyNever || (policy == corev1.RestartPolicyOnFailure && !fails) {
		return due(started.Add(t.runTime), now, actComplete)
	}
	if !fails {
		if readyCondition(pod) != readinessGatesTrue(pod, &pod.Status) {
			return actReadiness, 0
		}
		return actNone, 0
	}
	last, restarts := tm.crashed, int32(0)
	for _, cs := range pod.Status.ContainerStatuses {
		if !imageFails(cs.Image) {
			continue
		}
		restarts = max(restarts, cs.RestartCount)
		if last.IsZero() && cs.State.Running != nil && cs.RestartCount > 0 {
			last = cs.State.Running.StartedAt.Time
		}
	}
	if last.IsZero() {
		last = started
	}
	return due(last.Add(crashDelay(t.runTime, restarts)), now, actCrash)
}

func due(at, now time.Time, act podAction) (podAction, time.Duration) {
	if now.Before(at) {
		return actNone, at.Sub(now)
	}
	return act, 0
}

// readyCondition reports whether pod's Ready condition is True.
func readyCondition(pod *corev1.Pod) bool {
	i := findPodCondition(pod.Status.Conditions, corev1.PodReady)
	return i >= 0 && pod.Status.Conditions[i].Status == corev1.ConditionTrue
}
