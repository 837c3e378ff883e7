package statefulset

import (
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-io/skiff/internal/controller/podset"
)

// snapshot is what one reconcile decides from: the set's spec reduced to
// what the plan needs, its revisions and the pods it controls.
type snapshot struct {
	set       string // the set's name: pods are <set>-<ordinal>
	replicas  int
	start     int  // first ordinal
	parallel  bool // podManagementPolicy Parallel
	rolling   bool // updateStrategy RollingUpdate (else OnDelete)
	partition int
	minReady  int32
	current   string // current revision name
	update    string // update revision name
	pods      []*corev1.Pod
	now       time.Time
}

// create is a pod to create: the ordinal and the revision whose template
// it is built from.
type create struct {
	ordinal  int
	revision string
}

// claimsOf is a pod whose claims' owner references are brought in line
// with the set's retention policy (claimOwners); condemned: its ordinal
// is outside the set's range.
type claimsOf struct {
	pod       *corev1.Pod
	condemned bool
}

// plan is what a reconcile does, in order: creations, claims' owner
// references, then deletions (none if an owner reference could not be
// written: no pod goes before its claims have the owners the policy
// wants).
type plan struct {
	create []create
	claims []claimsOf
	delete []*corev1.Pod
}

// snapshotOf reduces set to a snapshot (defaults applied as the API
// server applies them, in case an object predates them).
func snapshotOf(set *appsv1.StatefulSet, current, update string, pods []*corev1.Pod, now time.Time) snapshot {
	s := snapshot{
		set:      set.Name,
		replicas: 1,
		start:    startOrdinal(set),
		parallel: set.Spec.PodManagementPolicy == appsv1.ParallelPodManagement,
		rolling:  set.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType,
		minReady: set.Spec.MinReadySeconds,
		current:  current,
		update:   update,
		pods:     pods,
		now:      now,
	}
	if set.Spec.Replicas != nil {
		s.replicas = max(int(*set.Spec.Replicas), 0)
	}
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		s.partition = max(int(*ru.Partition), 0)
	}
	return s
}

// healthy: Running, available for minReadySeconds, not being deleted.
func (s snapshot) healthy(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podset.IsAvailable(p, s.minReady, s.now)
}

func revisionOf(p *corev1.Pod) string { return p.Labels[appsv1.ControllerRevisionHashLabelKey] }

// slots places the pods: slots[i] is the pod with ordinal start+i (nil if
// missing) for i < replicas; condemned are the pods with any other
// ordinal, highest ordinal first. Pods whose name is not <set>-<n> are
// ignored.
func (s snapshot) slots() (slots, condemned []*corev1.Pod) {
	slots = make([]*corev1.Pod, s.replicas)
	for _, p := range s.pods {
		ord, ok := ordinalOf(s.set, p.Name)
		if !ok {
			continue
		}
		if i := ord - s.start; i >= 0 && i < s.replicas {
			slots[i] = p
		} else {
			condemned = append(condemned, p)
		}
	}
	slices.SortFunc(condemned, func(a, b *corev1.Pod) int {
		oa, _ := ordinalOf(s.set, a.Name)
		ob, _ := ordinalOf(s.set, b.Name)
		return ob - oa
	})
	return slots, condemned
}

// decide returns the next steps for the snapshot, as upstream's
// StatefulSet control loop takes them:
//
//  1. Every ordinal in [start, start+replicas) gets a pod, lowest first;
//     a Failed or Succeeded pod is deleted to be recreated. A missing pod
//     below the partition is built from the current revision, others
//     from the update revision.
//  2. Pods with ordinals outside the range are deleted, highest first,
//     after the owner references of all of their claims are set for
//     the retention policy (whenScaled Delete: the claim is owned by
//     its pod, and goes with it).
//  3. With RollingUpdate, pods at index >= partition not at the update
//     revision are deleted (to be recreated at it), highest first, one
//     at a time, each waiting until the ones above it are healthy.
//
// With OrderedReady each step waits until every pod before it is Running
// and Ready (available), and steps 1 and 2 take one action at a time;
// with Parallel steps 1 and 2 act on all pods at once.
//
// The claims of every existing pod in the range are brought in line with
// the retention policy on each reconcile (no pod reference: a pod scaled
// back into the range keeps its storage). Upstream does it only for the
// pods its ordered walk reaches; doing it for all is never less safe, as
// for a pod in range it only takes the pod's reference off or sets the
// set's as whenDeleted says.
func decide(s snapshot) plan {
	var out plan
	ordered := !s.parallel
	slots, condemned := s.slots()
	for _, p := range slots {
		if p != nil {
			out.claims = append(out.claims, claimsOf{pod: p})
		}
	}

	for i, p := range slots {
		switch {
		case p == nil:
			rev := s.update
			if s.rolling && i < s.partition && s.current != "" {
				rev = s.current
			}
			out.create = append(out.create, create{ordinal: s.start + i, revision: rev})
			if ordered {
				return out
			}
		case p.DeletionTimestamp != nil:
			if ordered {
				return out
			}
		case podset.IsTerminal(p):
			out.delete = append(out.delete, p)
			if ordered {
				return out
			}
		case !s.healthy(p):
			if ordered {
				return out
			}
		}
	}

	for _, p := range condemned {
		out.claims = append(out.claims, claimsOf{pod: p, condemned: true})
	}
	for i, p := range condemned {
		if p.DeletionTimestamp != nil {
			if ordered {
				return out
			}
			continue
		}
		if ordered {
			// Scale down one at a time, and not past a lower pod that
			// is unhealthy: it may be the one the user is fixing.
			for _, q := range condemned[i+1:] {
				if !s.healthy(q) {
					return out
				}
			}
			out.delete = append(out.delete, p)
			return out
		}
		out.delete = append(out.delete, p)
	}

	if !s.rolling || len(out.create) > 0 || len(out.delete) > 0 {
		return out
	}
	for i := len(slots) - 1; i >= s.partition; i-- {
		p := slots[i]
		if p == nil {
			return out
		}
		if revisionOf(p) != s.update && p.DeletionTimestamp == nil {
			out.delete = append(out.delete, p)
			return out
		}
		if !s.healthy(p) {
			return out
		}
	}
	return out
}

// status computes the set's status from the pods it controls. The
// current revision becomes the update revision once every pod is at the
// update revision and ready (upstream does this for RollingUpdate only;
// skiff also does it for OnDelete, so that status converges there too).
func status(set *appsv1.StatefulSet, s snapshot) appsv1.StatefulSetStatus {
	st := *set.Status.DeepCopy()
	st.ObservedGeneration = set.Generation
	st.Replicas, st.ReadyReplicas, st.AvailableReplicas, st.CurrentReplicas, st.UpdatedReplicas = 0, 0, 0, 0, 0
	for _, p := range s.pods {
		if _, ok := ordinalOf(s.set, p.Name); !ok {
			continue
		}
		st.Replicas++
		if p.Status.Phase == corev1.PodRunning && podset.IsReady(p) {
			st.ReadyReplicas++
			if podset.IsAvailable(p, s.minReady, s.now) {
				st.AvailableReplicas++
			}
		}
		if p.DeletionTimestamp != nil {
			continue
		}
		if revisionOf(p) == s.current {
			st.CurrentReplicas++
		}
		if revisionOf(p) == s.update {
			st.UpdatedReplicas++
		}
	}
	st.CurrentRevision = s.current
	st.UpdateRevision = s.update
	if st.UpdatedReplicas == st.Replicas && st.ReadyReplicas == st.Replicas && int(st.Replicas) == s.replicas {
		st.CurrentRevision = s.update
		st.CurrentReplicas = st.UpdatedReplicas
	}
	return st
}

// untilAvailable is how long until the next ready pod becomes available
// (0: none is waiting).
func untilAvailable(s snapshot) time.Duration {
	var wait time.Duration
	for _, p := range s.pods {
		if d := podset.UntilAvailable(p, s.minReady, s.now); d > 0 && (wait == 0 || d < wait) {
			wait = d
		}
	}
	return wait
}
