package job

import (
	"math"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// An Indexed Job with backoffLimitPerIndex counts failures per index, as
// upstream does, on the pods themselves: each replacement pod carries in
// batch.kubernetes.io/job-index-failure-count how many earlier pods of its
// index failed (and in ...-ignored-failure-count how many failures an
// Ignore rule forgave), one more than the pod it replaces. An index whose
// pod fails with backoffLimitPerIndex failures behind it, or matches a
// FailIndex rule, is failed: it gets no more pods and is listed in
// status.failedIndexes.

// perIndex reports whether job counts failures per index.
func perIndex(job *batchv1.Job) bool {
	return job.Spec.BackoffLimitPerIndex != nil && isIndexed(job)
}

// isIndexed reports whether job is an Indexed Job the controller can run
// (it has completions).
func isIndexed(job *batchv1.Job) bool {
	return job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion && job.Spec.Completions != nil
}

// indexFailures reads a pod's failure count annotations: failures of its
// index before it that counted, and that an Ignore rule forgave. Absent,
// malformed or out-of-range values read as 0, as upstream reads them.
func indexFailures(p *corev1.Pod) (counted, ignored int32) {
	return annotationInt32(p, batchv1.JobIndexFailureCountAnnotation), annotationInt32(p, batchv1.JobIndexIgnoredFailureCountAnnotation)
}

func annotationInt32(p *corev1.Pod, key string) int32 {
	v, ok := p.Annotations[key]
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > math.MaxInt32 {
		return 0
	}
	return int32(n)
}

// replacementFailures is the failure counts for the pod that replaces
// last, the latest failed pod of an index (nil: the index has not failed
// yet, both are 0).
func replacementFailures(job *batchv1.Job, last *corev1.Pod) (counted, ignored int32) {
	if last == nil {
		return 0, 0
	}
	counted, ignored = indexFailures(last)
	if countsFailure(job.Spec.PodFailurePolicy, last) {
		counted++
	} else {
		ignored++
	}
	return counted, ignored
}

// indexFailed reports whether the failed pod p fails its index: it matched
// a FailIndex rule, or its failure counts and its index already had
// backoffLimitPerIndex counted failures before it.
func indexFailed(job *batchv1.Job, p *corev1.Pod) bool {
	if a, _, ok := matchFailurePolicy(job.Spec.PodFailurePolicy, p); ok {
		switch a {
		case batchv1.PodFailurePolicyActionFailIndex:
			return true
		case batchv1.PodFailurePolicyActionIgnore:
			return false
		}
	}
	counted, _ := indexFailures(p)
	return counted >= *job.Spec.BackoffLimitPerIndex
}

// lastFailedByIndex picks, for each index below completions, the failed
// pod that a replacement continues from: the one with the most failures
// (counted and ignored) behind it, the later-finished one on a tie.
// remembered holds such pods from earlier reconciles, which may since
// have been deleted.
func lastFailedByIndex(failed []*corev1.Pod, remembered map[int]*corev1.Pod, completions int) map[int]*corev1.Pod {
	out := make(map[int]*corev1.Pod, len(remembered))
	consider := func(ix int, p *corev1.Pod) {
		if ix < 0 || ix >= completions {
			return
		}
		cur, ok := out[ix]
		if !ok {
			out[ix] = p
			return
		}
		pc, pi := indexFailures(p)
		cc, ci := indexFailures(cur)
		if pc+pi > cc+ci || (pc+pi == cc+ci && !finishTime(p).Before(finishTime(cur))) {
			out[ix] = p
		}
	}
	for ix, p := range remembered {
		consider(ix, p)
	}
	for _, p := range failed {
		if ix, ok := podIndex(p); ok {
			consider(ix, p)
		}
	}
	return out
}
