package deployment

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
)

// isScalingEvent reports whether spec.replicas changed since the active
// ReplicaSets were last scaled (their desired-replicas annotation differs):
// such a change is applied by scaling, not by a rollout step.
func isScalingEvent(d *appsv1.Deployment, all []*appsv1.ReplicaSet) bool {
	for _, rs := range active(all) {
		if desired, ok := desiredReplicasAnnotation(rs); ok && desired != replicasOf(d) {
			return true
		}
	}
	return false
}

// activeOrLatest returns the one ReplicaSet that should carry all
// replicas when at most one is active: the active one, else the new one,
// else the newest old one. With several active it returns nil.
func activeOrLatest(newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	act := active(withNew(oldRSs, newRS))
	switch {
	case len(act) == 1:
		return act[0]
	case len(act) > 1:
		return nil
	case newRS != nil:
		return newRS
	case len(oldRSs) == 0:
		return nil
	}
	olds := slices.Clone(oldRSs)
	sortOldestFirst(olds)
	return olds[len(olds)-1]
}

// isSaturated reports whether the new ReplicaSet has all the Deployment's
// replicas, all available.
func isSaturated(d *appsv1.Deployment, newRS *appsv1.ReplicaSet) bool {
	if newRS == nil {
		return false
	}
	desired, ok := desiredReplicasAnnotation(newRS)
	return ok && desired == replicasOf(d) && rsReplicas(newRS) == replicasOf(d) && newRS.Status.AvailableReplicas == replicasOf(d)
}

// scale applies a change of spec.replicas to the working copies. One
// active ReplicaSet takes it all; a saturated new ReplicaSet means the old
// ones go to zero; during a rolling update the difference between
// spec.replicas + maxSurge and the replicas of all active ReplicaSets is
// spread over them in proportion to their size (proportional scaling), so
// that a scale in the middle of a rollout keeps the rollout's proportions.
func scale(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) {
	desired := replicasOf(d)
	if rs := activeOrLatest(newRS, oldRSs); rs != nil {
		scaleTo(d, rs, desired)
		return
	}
	if isSaturated(d, newRS) {
		for _, rs := range active(oldRSs) {
			scaleTo(d, rs, 0)
		}
		return
	}
	if !isRollingUpdate(d) {
		return
	}
	act := active(withNew(oldRSs, newRS))
	var allowed int32
	if desired > 0 {
		allowed = desired + maxSurge(d)
	}
	sizes := proportional(d, act, allowed-sumReplicas(act))
	for i, rs := range act {
		scaleTo(d, rs, sizes[i])
	}
}

// proportional returns the new sizes of the active ReplicaSets rss after
// spreading delta (positive or negative) over them, as upstream does and
// as its conformance test checks to the replica: each ReplicaSet goes to
// its replicas × (spec.replicas + maxSurge) / the max-replicas it
// recorded when last scaled, rounded to the nearest integer, visited from
// the largest (newest first on ties when growing, oldest first when
// shrinking) and never past what is left of delta; what rounding leaves
// over goes to the first visited, which never drops below zero.
func proportional(d *appsv1.Deployment, rss []*appsv1.ReplicaSet, delta int32) []int32 {
	sizes := make([]int32, len(rss))
	for i, rs := range rss {
		sizes[i] = rsReplicas(rs)
	}
	if delta == 0 || len(rss) == 0 {
		return sizes
	}
	order := make([]int, len(rss))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if sizes[a] != sizes[b] {
			return int(sizes[b] - sizes[a])
		}
		ta, tb := &rss[a].CreationTimestamp, &rss[b].CreationTimestamp
		if ta.Equal(tb) {
			return cmpString(rss[a].Name, rss[b].Name)
		}
		newerFirst := tb.Before(ta)
		if delta < 0 {
			newerFirst = !newerFirst
		}
		if newerFirst {
			return -1
		}
		return 1
	})
	total := sumReplicas(rss)
	var added int32
	for _, i := range order {
		if added == delta {
			break
		}
		share := fraction(d, rss[i], total)
		if left := delta - added; delta > 0 {
			share = min(share, left)
		} else {
			share = max(share, left)
		}
		sizes[i] += share
		added += share
	}
	first := order[0]
	sizes[first] = max(sizes[first]+delta-added, 0)
	return sizes
}

// fraction is how many replicas rs gains (or, negative, loses) when it
// keeps its share of the Deployment's new maximum, spec.replicas +
// maxSurge, relative to the maximum recorded in its max-replicas
// annotation. Without the annotation (or with a useless one) the
// Deployment's status.replicas stands in as upstream's does, and failing
// that total, the active ReplicaSets' replicas now. Scaling to zero
// removes all of rs.
func fraction(d *appsv1.Deployment, rs *appsv1.ReplicaSet, total int32) int32 {
	cur := rsReplicas(rs)
	desired := replicasOf(d)
	if desired == 0 {
		return -cur
	}
	recorded, ok := maxReplicasAnnotation(rs)
	if !ok || recorded <= 0 {
		recorded = d.Status.Replicas
	}
	if recorded <= 0 {
		recorded = total
	}
	if recorded <= 0 {
		return 0
	}
	newMax := int64(desired + maxSurge(d))
	// Round half up: (2ab + c) / 2c for non-negative a, b and positive c.
	target := (2*int64(cur)*newMax + int64(recorded)) / (2 * int64(recorded))
	return int32(target) - cur
}
