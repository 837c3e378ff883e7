package deployment

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
)

// historyToDelete picks the old ReplicaSets beyond revisionHistoryLimit to
// delete, lowest revision first. Only ReplicaSets that are scaled to zero,
// have no pods left, whose status has caught up with their spec and that
// are not being deleted go; a ReplicaSet this sync is about to scale
// (planned differs from the listed one) stays until a later sync. A nil
// limit keeps everything, as upstream does.
func historyToDelete(d *appsv1.Deployment, oldRSs []*appsv1.ReplicaSet, listed map[string]*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	if d.Spec.RevisionHistoryLimit == nil {
		return nil
	}
	var cleanable []*appsv1.ReplicaSet
	for _, rs := range oldRSs {
		if rs.DeletionTimestamp == nil {
			cleanable = append(cleanable, rs)
		}
	}
	diff := len(cleanable) - int(max(*d.Spec.RevisionHistoryLimit, 0))
	if diff <= 0 {
		return nil
	}
	sortByRevision(cleanable)
	var out []*appsv1.ReplicaSet
	for _, rs := range cleanable[:diff] {
		orig := listed[rs.Name]
		if orig == nil || rsReplicas(orig) != 0 || rsReplicas(rs) != 0 || rs.Status.Replicas != 0 || rs.Generation > rs.Status.ObservedGeneration {
			continue
		}
		out = append(out, rs)
	}
	return out
}

// sortByRevision orders by revision, then creation time and name.
func sortByRevision(rss []*appsv1.ReplicaSet) {
	sortOldestFirst(rss)
	slices.SortStableFunc(rss, func(a, b *appsv1.ReplicaSet) int {
		ra, rb := revisionOf(a.Annotations), revisionOf(b.Annotations)
		switch {
		case ra < rb:
			return -1
		case ra > rb:
			return 1
		}
		return 0
	})
}
