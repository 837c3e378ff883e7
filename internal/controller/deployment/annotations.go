package deployment

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// Annotations the controller reads and writes, as upstream names them.
const (
	// RevisionAnnotation numbers a Deployment's rollouts: on each
	// ReplicaSet the revision it last served, on the Deployment the
	// revision of its current (new) ReplicaSet. kubectl rollout history
	// and undo read it.
	RevisionAnnotation = "deployment.kubernetes.io/revision"
	// RevisionHistoryAnnotation lists, on a ReplicaSet that became new
	// again (a rollback), the earlier revisions it served.
	RevisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
	// DesiredReplicasAnnotation is the Deployment's spec.replicas when the
	// controller last scaled the ReplicaSet; a difference is a scaling
	// event.
	DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	// MaxReplicasAnnotation is spec.replicas + maxSurge at that time.
	MaxReplicasAnnotation = "deployment.kubernetes.io/max-replicas"
	// ChangeCauseAnnotation is copied from the Deployment to its
	// ReplicaSets (kubectl rollout history shows it).
	ChangeCauseAnnotation = "kubernetes.io/change-cause"
	// lastAppliedAnnotation is kubectl apply's; never copied to ReplicaSets.
	lastAppliedAnnotation = corev1.LastAppliedConfigAnnotation
	// rollbackToAnnotation is the extensions/v1beta1 rollback request;
	// never copied.
	rollbackToAnnotation = "deprecated.deployment.rollback.to"
)

// Annotations of skiff's automatic rollback (docs/auto-rollback.md).
const (
	// AutoRollbackAnnotation, set to "true" on a Deployment, rolls it back
	// to its last fully available revision when a rollout exceeds its
	// progress deadline.
	AutoRollbackAnnotation = "skiff.io/auto-rollback"
	// AvailableAtRevisionAnnotation marks a ReplicaSet that once had all of
	// the Deployment's replicas available; its value is the revision it
	// served then. The controller sets it when a rollout completes and
	// removes it when that ReplicaSet, new again, times out: only marked
	// ReplicaSets are rollback targets, which is what keeps automatic
	// rollback from looping.
	AvailableAtRevisionAnnotation = "skiff.io/available-at-revision"
)

// Condition reasons of the Progressing and Available conditions. The
// upstream ones are what kubectl and other tools match on.
const (
	reasonNewRSCreated       = "NewReplicaSetCreated"
	reasonFoundNewRS         = "FoundNewReplicaSet"
	reasonRSUpdated          = "ReplicaSetUpdated"
	reasonNewRSAvailable     = "NewReplicaSetAvailable"
	reasonTimedOut           = "ProgressDeadlineExceeded"
	reasonPaused             = "DeploymentPaused"
	reasonResumed            = "DeploymentResumed"
	reasonMinimumAvailable   = "MinimumReplicasAvailable"
	reasonMinimumUnavailable = "MinimumReplicasUnavailable"
	// ReasonAutoRolledBack is the Progressing reason skiff sets when it
	// rolled a Deployment back after a progress deadline was exceeded.
	ReasonAutoRolledBack = "AutoRolledBack"
)

// skipCopy lists the Deployment annotations that are not copied to its
// ReplicaSets: the controller's own and kubectl's apply state.
var skipCopy = map[string]bool{
	lastAppliedAnnotation:         true,
	RevisionAnnotation:            true,
	RevisionHistoryAnnotation:     true,
	DesiredReplicasAnnotation:     true,
	MaxReplicasAnnotation:         true,
	rollbackToAnnotation:          true,
	AvailableAtRevisionAnnotation: true,
}

// revisionOf returns the revision annotation of an object's annotations, 0
// when absent or malformed.
func revisionOf(annotations map[string]string) int64 {
	v, err := strconv.ParseInt(annotations[RevisionAnnotation], 10, 64)
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// maxRevision is the largest revision among rss.
func maxRevision(rss []*appsv1.ReplicaSet) int64 {
	var m int64
	for _, rs := range rss {
		m = max(m, revisionOf(rs.Annotations))
	}
	return m
}

// copyAnnotations copies the Deployment's annotations onto rs, except
// those in skipCopy. Like upstream it never removes an annotation from rs.
// It reports whether rs changed.
func copyAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	changed := false
	for k, v := range d.Annotations {
		if skipCopy[k] {
			continue
		}
		if cur, ok := rs.Annotations[k]; ok && cur == v {
			continue
		}
		if rs.Annotations == nil {
			rs.Annotations = map[string]string{}
		}
		rs.Annotations[k] = v
		changed = true
	}
	return changed
}

// setNewRSAnnotations brings the new ReplicaSet's annotations up to date:
// the Deployment's annotations copied, the revision raised to revision
// (never lowered; the revision it served before goes to the
// revision-history annotation), and the replicas annotations set when
// missing.
func setNewRSAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet, revision int64) {
	copyAnnotations(d, rs)
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	old, hasOld := rs.Annotations[RevisionAnnotation]
	if cur := revisionOf(rs.Annotations); !hasOld || cur < revision {
		rs.Annotations[RevisionAnnotation] = strconv.FormatInt(revision, 10)
		if hasOld && old != "" {
			history := slices.DeleteFunc(strings.Split(rs.Annotations[RevisionHistoryAnnotation], ","), func(s string) bool { return s == "" })
			rs.Annotations[RevisionHistoryAnnotation] = strings.Join(append(history, old), ",")
		}
	}
	if _, ok := rs.Annotations[DesiredReplicasAnnotation]; !ok {
		setReplicasAnnotations(d, rs)
	}
}

// setReplicasAnnotations records the Deployment's desired and maximum
// replicas on rs, as upstream does whenever it scales a ReplicaSet.
func setReplicasAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet) {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	desired := replicasOf(d)
	rs.Annotations[DesiredReplicasAnnotation] = strconv.FormatInt(int64(desired), 10)
	rs.Annotations[MaxReplicasAnnotation] = strconv.FormatInt(int64(desired+maxSurge(d)), 10)
}

// desiredReplicasAnnotation returns the desired-replicas annotation of rs.
func desiredReplicasAnnotation(rs *appsv1.ReplicaSet) (int32, bool) {
	return int32Annotation(rs, DesiredReplicasAnnotation)
}

// maxReplicasAnnotation returns the max-replicas annotation of rs.
func maxReplicasAnnotation(rs *appsv1.ReplicaSet) (int32, bool) {
	return int32Annotation(rs, MaxReplicasAnnotation)
}

// int32Annotation returns annotation key of rs as a number; false when it
// is absent or malformed.
func int32Annotation(rs *appsv1.ReplicaSet, key string) (int32, bool) {
	v, ok := rs.Annotations[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// annotationsEqual compares two annotation maps, nil equal to empty.
func annotationsEqual(a, b map[string]string) bool {
	return len(a) == len(b) && maps.Equal(a, b)
}
