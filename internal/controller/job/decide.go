package job

import (
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-io/skiff/internal/controller/podset"
)

// podCounts summarises the pods a Job owns.
type podCounts struct {
	active      int32 // not terminal, not being deleted
	ready       int32 // active and Ready
	succeeded   int32
	failed      int32
	terminating int32 // being deleted and not terminal
	// restarts is the sum of container restarts of the non-succeeded
	// pods: with restartPolicy OnFailure each restart is a retry that
	// counts against backoffLimit.
	restarts int32
}

// countPods counts pods by state.
func countPods(pods []*corev1.Pod) podCounts {
	var c podCounts
	for _, p := range pods {
		if p == nil {
			continue
		}
		switch {
		case p.Status.Phase == corev1.PodSucceeded:
			c.succeeded++
		case p.Status.Phase == corev1.PodFailed:
			c.failed++
		case p.DeletionTimestamp != nil:
			c.terminating++
		default:
			c.active++
			if podset.IsReady(p) {
				c.ready++
			}
		}
		if p.Status.Phase != corev1.PodSucceeded {
			for _, cs := range p.Status.ContainerStatuses {
				c.restarts += cs.RestartCount
			}
			for _, cs := range p.Status.InitContainerStatuses {
				c.restarts += cs.RestartCount
			}
		}
	}
	return c
}

// nonIndexedDiff is how many pods a NonIndexed Job should create (> 0) or
// delete (< 0) given its spec and the active and succeeded pod counts.
// With completions nil (a work queue) no pod is created once any pod has
// succeeded: the remaining ones are left to finish.
func nonIndexedDiff(parallelism int32, completions *int32, active, succeeded int32) int32 {
	want := parallelism
	if completions == nil {
		if succeeded > 0 {
			return 0
		}
	} else {
		want = min(parallelism, max(*completions-succeeded, 0))
	}
	return max(want, 0) - active
}

// indexedPlan decides, for an Indexed Job with completions and
// parallelism, which indexes get a new pod (lowest first) and which active
// pods to delete: pods for an index already succeeded, out of range, a
// second pod for the same index, and the highest indexes beyond
// parallelism. activeByIndex maps an index to its active pods (pods without
// a valid index are under key -1).
func indexedPlan(completions, parallelism int32, succeeded map[int]bool, activeByIndex map[int][]*corev1.Pod) (create []int, remove []*corev1.Pod) {
	var keep []int
	for idx, pods := range activeByIndex {
		if idx < 0 || idx >= int(completions) || succeeded[idx] {
			remove = append(remove, pods...)
			continue
		}
		if len(pods) > 1 {
			sorted := slices.Clone(pods)
			slices.SortStableFunc(sorted, func(a, b *corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
			remove = append(remove, sorted[1:]...)
		}
		keep = append(keep, idx)
	}
	slices.Sort(keep)
	if over := len(keep) - int(parallelism); over > 0 {
		for _, idx := range keep[len(keep)-over:] {
			remove = append(remove, activeByIndex[idx]...)
		}
		keep = keep[:len(keep)-over]
	}
	room := int(parallelism) - len(keep)
	running := make(map[int]bool, len(keep))
	for _, idx := range keep {
		running[idx] = true
	}
	for idx := 0; idx < int(completions) && len(create) < room; idx++ {
		if !succeeded[idx] && !running[idx] {
			create = append(create, idx)
		}
	}
	slices.SortFunc(remove, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return create, remove
}

// backoffExceeded reports whether a Job's failures (failed pods plus, for
// restartPolicy OnFailure, container restarts) exceed backoffLimit (nil:
// upstream's default 6).
func backoffExceeded(failed, restarts int32, onFailure bool, limit *int32) bool {
	l := int32(6)
	if limit != nil {
		l = *limit
	}
	n := failed
	if onFailure {
		n += restarts
	}
	return n > l
}

// deadlineLeft is how long a Job may still run under
// activeDeadlineSeconds: ok false when it has no deadline or has not
// started, a non-positive duration when the deadline has passed.
func deadlineLeft(start *metav1.Time, activeDeadlineSeconds *int64, now time.Time) (time.Duration, bool) {
	if start == nil || activeDeadlineSeconds == nil {
		return 0, false
	}
	return start.Add(time.Duration(*activeDeadlineSeconds) * time.Second).Sub(now), true
}

// completionsReached reports whether a Job's success criteria are met:
// succeeded >= completions, or with completions nil (a work queue) at least
// one pod succeeded and none is still active. For an Indexed Job,
// succeeded is the number of distinct completed indexes.
func completionsReached(completions *int32, succeeded, active int32) bool {
	if completions == nil {
		return succeeded > 0 && active == 0
	}
	return succeeded >= *completions
}

// podIndex reads a pod's completion index from its annotation (or label).
func podIndex(p *corev1.Pod) (int, bool) {
	v, ok := p.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		v, ok = p.Labels[batchv1.JobCompletionIndexAnnotation]
	}
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 {
		return 0, false
	}
	return i, true
}

// parseIndexes parses status.completedIndexes ("1,3-5,7"), ignoring
// malformed parts and indexes at or above limit.
func parseIndexes(s string, limit int) map[int]bool {
	out := map[int]bool{}
	if s == "" {
		return out
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				continue
			}
		}
		for i := a; i <= b && i < limit; i++ {
			out[i] = true
		}
	}
	return out
}

// formatIndexes renders a set of indexes as upstream's completedIndexes:
// sorted, consecutive runs collapsed to "a-b", comma separated.
func formatIndexes(set map[int]bool) string {
	idx := make([]int, 0, len(set))
	for i, ok := range set {
		if ok {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	var b strings.Builder
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(idx[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(idx[j]))
		}
		i = j + 1
	}
	return b.String()
}

// setCondition sets condition typ of conds to status with reason and
// message, changing lastTransitionTime only when the status changes, and
// returns the result. It reports whether anything changed.
func setCondition(conds []batchv1.JobCondition, typ batchv1.JobConditionType, status corev1.ConditionStatus, reason, message string, now time.Time) ([]batchv1.JobCondition, bool) {
	t := metav1.NewTime(now)
	for i := range conds {
		c := &conds[i]
		if c.Type != typ {
			continue
		}
		if c.Status == status && c.Reason == reason && c.Message == message {
			return conds, false
		}
		if c.Status != status {
			c.LastTransitionTime = t
		}
		c.Status, c.Reason, c.Message, c.LastProbeTime = status, reason, message, t
		return conds, true
	}
	return append(conds, batchv1.JobCondition{Type: typ, Status: status, Reason: reason, Message: message, LastProbeTime: t, LastTransitionTime: t}), true
}

// findCondition returns condition typ if it is True, else nil.
func findCondition(conds []batchv1.JobCondition, typ batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range conds {
		if conds[i].Type == typ && conds[i].Status == corev1.ConditionTrue {
			return &conds[i]
		}
	}
	return nil
}

// finished reports whether a Job has a True Complete or Failed condition.
func finished(j *batchv1.Job) bool {
	return findCondition(j.Status.Conditions, batchv1.JobComplete) != nil || findCondition(j.Status.Conditions, batchv1.JobFailed) != nil
}
