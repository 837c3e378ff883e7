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
//
// Upstream scales each ReplicaSet by the ratio of the new maximum to the
// max-replicas annotation it recorded; this version uses each
// ReplicaSet's share of the current total, gives a positive remainder to
// the largest (newest on ties) and takes a negative remainder from the
// largest (oldest on ties). Both keep the total exact.
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
	current := sumReplicas(act)
	delta := desired + maxSurge(d) - current
	sizes := proportional(act, delta, current)
	for i, rs := range act {
		scaleTo(d, rs, sizes[i])
	}
}

// proportional returns the new sizes of rss after spreading delta (positive
// or negative) over them in proportion to their sizes, whose sum is total.
func proportional(rss []*appsv1.ReplicaSet, delta, total int32) []int32 {
	sizes := make([]int32, len(rss))
	for i, rs := range rss {
		sizes[i] = rsReplicas(rs)
	}
	if delta == 0 || total <= 0 || len(rss) == 0 {
		return sizes
	}
	order := make([]int, len(rss))
	for i := range order {
		order[i] = i
	}
	// Largest first; ties: newest first when growing, oldest first when
	// shrinking.
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
	mag := delta
	if mag < 0 {
		mag = -mag
	}
	var spread int32
	for _, i := range order {
		share := int32(int64(sizes[i]) * int64(mag) / int64(total))
		if delta < 0 {
			share = min(share, sizes[i])
			sizes[i] -= share
		} else {
			sizes[i] += share
		}
		spread += share
	}
	left := mag - spread
	if delta > 0 {
		sizes[order[0]] += left
		return sizes
	}
	for _, i := range order {
		if left == 0 {
			break
		}
		n := min(left, sizes[i])
		sizes[i] -= n
		left -= n
	}
	return sizes
}
