package daemonset

import (
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-io/skiff/internal/controller/podset"
)

// nodeView is one node as a DaemonSet sees it: whether its pod belongs
// there and the DaemonSet's pods for it (none being deleted).
type nodeView struct {
	name string
	fit  fit
	pods []*corev1.Pod
}

// rollout is how a DaemonSet replaces pods of an old template.
type rollout struct {
	onDelete        bool // OnDelete: only deleted pods are replaced
	maxSurge        int  // RollingUpdate: extra new pods per rollout
	maxUnavailable  int  // RollingUpdate: nodes allowed without an available pod
	minReadySeconds int32
}

// plan is what one reconcile does: nodes that get a new pod, pods to
// delete.
type plan struct {
	create []string
	remove []*corev1.Pod
}

// rolloutFor reads a DaemonSet's update strategy, scaling percentages
// against desired nodes (both rounded up, as upstream) and keeping at
// least one of surge and unavailability so a rollout can progress.
func rolloutFor(ds *appsv1.DaemonSet, desired int) rollout {
	r := rollout{minReadySeconds: ds.Spec.MinReadySeconds}
	st := ds.Spec.UpdateStrategy
	if st.Type == appsv1.OnDeleteDaemonSetStrategyType {
		r.onDelete = true
		return r
	}
	unavailable, surge := intstr.FromInt32(1), intstr.FromInt32(0)
	if ru := st.RollingUpdate; ru != nil {
		if ru.MaxUnavailable != nil {
			unavailable = *ru.MaxUnavailable
		}
		if ru.MaxSurge != nil {
			surge = *ru.MaxSurge
		}
	}
	r.maxUnavailable, _ = intstr.GetScaledValueFromIntOrPercent(&unavailable, desired, true)
	r.maxSurge, _ = intstr.GetScaledValueFromIntOrPercent(&surge, desired, true)
	r.maxUnavailable, r.maxSurge = max(r.maxUnavailable, 0), max(r.maxSurge, 0)
	if r.maxUnavailable == 0 && r.maxSurge == 0 {
		r.maxUnavailable = 1
	}
	return r
}

// isUpdated reports whether a pod runs the current template.
func isUpdated(p *corev1.Pod, hash string) bool {
	return p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash
}

// decide plans a DaemonSet's pods: finished pods are deleted (and
// replaced), a node that should run the daemon and has no pod gets one,
// pods on nodes that may no longer keep them are deleted, duplicates are
// deleted (the oldest pod stays; with surge the oldest old and the oldest
// new pod stay), and pods of an old template are replaced as the rollout
// allows. nodes must be sorted by name; the plan is deterministic.
func decide(nodes []nodeView, hash string, r rollout, now time.Time) plan {
	var p plan
	type kept struct {
		name     string
		old, new *corev1.Pod
	}
	var running []kept
	for _, n := range nodes {
		var live []*corev1.Pod
		for _, pod := range n.pods {
			if podset.IsTerminal(pod) {
				p.remove = append(p.remove, pod)
			} else {
				live = append(live, pod)
			}
		}
		if !n.fit.shouldContinue {
			p.remove = append(p.remove, live...)
			continue
		}
		if len(live) == 0 {
			if n.fit.shouldRun {
				p.create = append(p.create, n.name)
			}
			continue
		}
		slices.SortStableFunc(live, func(a, b *corev1.Pod) int {
			if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
				return c
			}
			return strings.Compare(a.Name, b.Name)
		})
		k := kept{name: n.name}
		for _, pod := range live {
			switch {
			case r.maxSurge == 0 || r.onDelete:
				if k.old == nil && k.new == nil {
					if isUpdated(pod, hash) {
						k.new = pod
					} else {
						k.old = pod
					}
					continue
				}
			case isUpdated(pod, hash) && k.new == nil:
				k.new = pod
				continue
			case !isUpdated(pod, hash) && k.old == nil:
				k.old = pod
				continue
			}
			p.remove = append(p.remove, pod)
		}
		running = append(running, k)
	}
	if r.onDelete {
		return p
	}

	available := func(pod *corev1.Pod) bool { return pod != nil && podset.IsAvailable(pod, r.minReadySeconds, now) }
	if r.maxSurge == 0 {
		unavailable := len(p.create)
		for _, k := range running {
			if !available(k.old) && !available(k.new) {
				unavailable++
			}
		}
		var candidates []*corev1.Pod
		for _, k := range running {
			switch {
			case k.old == nil:
			case !available(k.old):
				p.remove = append(p.remove, k.old) // already unavailable: free
			default:
				candidates = append(candidates, k.old)
			}
		}
		for _, pod := range candidates {
			if unavailable >= r.maxUnavailable {
				break
			}
			p.remove = append(p.remove, pod)
			unavailable++
		}
		return p
	}

	surging := 0
	for _, k := range running {
		if k.old != nil && k.new != nil && !available(k.new) {
			surging++
		}
	}
	for _, k := range running {
		switch {
		case k.old == nil:
		case k.new != nil:
			if available(k.new) {
				p.remove = append(p.remove, k.old)
			}
		case !available(k.old):
			p.create = append(p.create, k.name) // nothing to protect: replace now
		case surging < r.maxSurge:
			p.create = append(p.create, k.name)
			surging++
		}
	}
	return p
}

// counts is a DaemonSet's status as numbers.
type counts struct {
	desired, current, misscheduled, ready, available, updated int32
}

// countNodes computes status numbers over nodes: a node that should run
// the daemon counts as scheduled when it has a live pod, as updated when
// one runs the current template, and as ready/available by its updated
// pod when it has one (else its old pod), so that a surge pod still
// starting does not count as rolled out. Live pods on nodes that should
// not run the daemon are misscheduled.
func countNodes(nodes []nodeView, hash string, minReadySeconds int32, now time.Time) counts {
	var c counts
	for _, n := range nodes {
		var old, upd *corev1.Pod
		for _, pod := range n.pods {
			if podset.IsTerminal(pod) {
				continue
			}
			if isUpdated(pod, hash) {
				if upd == nil {
					upd = pod
				}
			} else if old == nil {
				old = pod
			}
		}
		if !n.fit.shouldRun {
			if old != nil || upd != nil {
				c.misscheduled++
			}
			continue
		}
		c.desired++
		if old == nil && upd == nil {
			continue
		}
		c.current++
		judge := old
		if upd != nil {
			c.updated++
			judge = upd
		}
		if podset.IsReady(judge) {
			c.ready++
		}
		if podset.IsAvailable(judge, minReadySeconds, now) {
			c.available++
		}
	}
	return c
}
