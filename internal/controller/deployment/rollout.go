package deployment

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// replicasOf is a Deployment's spec.replicas (1 when unset, the default).
func replicasOf(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// rsReplicas is a ReplicaSet's spec.replicas (1 when unset, the default).
func rsReplicas(rs *appsv1.ReplicaSet) int32 {
	if rs == nil {
		return 0
	}
	if rs.Spec.Replicas == nil {
		return 1
	}
	return *rs.Spec.Replicas
}

func isRollingUpdate(d *appsv1.Deployment) bool {
	return d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType
}

// fenceposts resolves maxSurge and maxUnavailable against desired replicas
// as upstream does: surge rounds up, unavailable rounds down, and when both
// come out zero maxUnavailable becomes 1 so that the rollout can progress.
// Unset values take the API defaults (25%); a malformed value (the API
// server rejects those) counts as 0.
func fenceposts(d *appsv1.Deployment) (surge, unavailable int32) {
	if !isRollingUpdate(d) {
		return 0, 0
	}
	desired := int(replicasOf(d))
	def := intstr.FromString("25%")
	ms, mu := &def, &def
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		if ru.MaxSurge != nil {
			ms = ru.MaxSurge
		}
		if ru.MaxUnavailable != nil {
			mu = ru.MaxUnavailable
		}
	}
	s, err := intstr.GetScaledValueFromIntOrPercent(ms, desired, true)
	if err != nil || s < 0 {
		s = 0
	}
	u, err := intstr.GetScaledValueFromIntOrPercent(mu, desired, false)
	if err != nil || u < 0 {
		u = 0
	}
	if s == 0 && u == 0 {
		u = 1
	}
	return int32(s), int32(u)
}

// maxSurge is the resolved maxSurge (0 for Recreate).
func maxSurge(d *appsv1.Deployment) int32 {
	s, _ := fenceposts(d)
	return s
}

// maxUnavailable is the resolved maxUnavailable, at most spec.replicas (0
// for Recreate and for zero replicas).
func maxUnavailable(d *appsv1.Deployment) int32 {
	desired := replicasOf(d)
	if !isRollingUpdate(d) || desired == 0 {
		return 0
	}
	_, u := fenceposts(d)
	return min(u, desired)
}

// newRSReplicas is how far a rolling update may scale the new ReplicaSet
// now: up to spec.replicas, without the total of all ReplicaSets' replicas
// exceeding spec.replicas + maxSurge.
func newRSReplicas(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int32 {
	desired := replicasOf(d)
	cur := rsReplicas(newRS)
	if cur >= desired {
		return desired
	}
	total := sumReplicas(all)
	maxTotal := desired + maxSurge(d)
	if total >= maxTotal {
		return cur
	}
	return cur + min(maxTotal-total, desired-cur)
}

// rollOld scales the old ReplicaSets (working copies) down as far as a
// rolling update allows: first replicas that are not available (they do
// not count towards availability, so removing them costs nothing), oldest
// ReplicaSet first, then available ones while at least spec.replicas -
// maxUnavailable replicas stay available. Unlike upstream, the second step
// is also bounded by the spec-based budget of the first, so that a
// ReplicaSet status that lags behind a scale-down cannot make the
// controller scale down twice.
func rollOld(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) {
	all := withNew(oldRSs, newRS)
	minAvailable := replicasOf(d) - maxUnavailable(d)
	newUnavailable := max(rsReplicas(newRS)-availableOf(newRS), 0)
	budget := sumReplicas(all) - minAvailable - newUnavailable
	if budget <= 0 {
		return
	}
	olds := slices.Clone(oldRSs)
	sortOldestFirst(olds)

	var cleaned int32
	for _, rs := range olds {
		if cleaned >= budget {
			break
		}
		unhealthy := rsReplicas(rs) - availableOf(rs)
		if unhealthy <= 0 {
			continue
		}
		n := min(budget-cleaned, unhealthy)
		scaleTo(d, rs, rsReplicas(rs)-n)
		cleaned += n
	}

	toScale := min(sumAvailable(all)-minAvailable, budget-cleaned)
	var scaled int32
	for _, rs := range olds {
		if scaled >= toScale {
			break
		}
		n := min(rsReplicas(rs), toScale-scaled)
		if n <= 0 {
			continue
		}
		scaleTo(d, rs, rsReplicas(rs)-n)
		scaled += n
	}
}

// oldPodsRunning reports whether an old ReplicaSet still has pods, by its
// status.replicas (upstream counts the pods themselves; this controller
// does not watch pods).
func oldPodsRunning(oldRSs []*appsv1.ReplicaSet) bool {
	for _, rs := range oldRSs {
		if rs.Status.Replicas > 0 {
			return true
		}
	}
	return false
}

// scaleTo sets a working copy's replicas and, as upstream does whenever it
// scales a ReplicaSet, records the Deployment's desired and maximum
// replicas on it.
func scaleTo(d *appsv1.Deployment, rs *appsv1.ReplicaSet, n int32) {
	rs.Spec.Replicas = &n
	setReplicasAnnotations(d, rs)
}

func availableOf(rs *appsv1.ReplicaSet) int32 {
	if rs == nil {
		return 0
	}
	return rs.Status.AvailableReplicas
}

func sumReplicas(rss []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range rss {
		n += rsReplicas(rs)
	}
	return n
}

func sumAvailable(rss []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range rss {
		n += rs.Status.AvailableReplicas
	}
	return n
}

// withNew returns oldRSs plus newRS when it is not nil, in a new slice.
func withNew(oldRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	all := slices.Clone(oldRSs)
	if newRS != nil {
		all = append(all, newRS)
	}
	return all
}

func active(rss []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if rsReplicas(rs) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

// sortOldestFirst orders by creation time, then name.
func sortOldestFirst(rss []*appsv1.ReplicaSet) {
	slices.SortStableFunc(rss, func(a, b *appsv1.ReplicaSet) int {
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			if a.CreationTimestamp.Before(&b.CreationTimestamp) {
				return -1
			}
			return 1
		}
		return cmpString(a.Name, b.Name)
	})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
