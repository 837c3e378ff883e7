package job

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/controller/podset"
)

// Condition messages, as upstream words them.
const (
	msgCompletionsReached       = "Reached expected number of succeeded pods"
	msgBackoffExceeded          = "Job has reached the specified backoff limit"
	msgDeadlineExceeded         = "Job was active longer than specified deadline"
	msgFailedIndexes            = "Job has failed indexes"
	msgMaxFailedIndexesExceeded = "Job has exceeded the specified maximal number of failed indexes"
)

// input is what decide reads: one Job, the pods it controls (in any
// phase), its ledger, the time and the back-off durations.
type input struct {
	job        *batchv1.Job
	pods       []*corev1.Pod
	ledger     ledgerView
	now        time.Time
	backoff    time.Duration // DefaultPodFailureBackoff unless a test shortens it
	maxBackoff time.Duration
}

// decision is what one reconcile of a Job does: the status to write, the
// pods to create and delete, when to look again, and what the ledger
// records once the status is written.
type decision struct {
	status  batchv1.JobStatus
	indexed bool
	create  []int // completion indexes of new pods (-1: not indexed)
	remove  []*corev1.Pod
	// failures holds, per index in create, the failure counts (counted,
	// ignored) its pod carries in annotations (backoffLimitPerIndex).
	failures map[int][2]int32
	// requeue > 0 asks for another reconcile then: pods are held back
	// by the pod failure back-off until that time.
	requeue time.Duration
	// events are recorded once the status that goes with them is
	// written, so a lost write (a conflict with a stale cache) does not
	// repeat them.
	events []event

	counted    []types.UID // pods whose outcome status now holds
	backoff    backoffRecord
	lastFailed map[int]*corev1.Pod
}

type event struct{ typ, reason, message string }

// decide is the Job controller's decision, a pure function of in: it
// counts the pods that finished since the last reconcile into status,
// sets the conditions (in upstream's order: a podFailurePolicy FailJob
// rule, backoffLimit, activeDeadlineSeconds, failed indexes, then
// successPolicy and completions), and plans pods: none while the pod
// failure back-off runs, none once the Job met its success or failure
// criteria (whose active pods it deletes, declaring the Job Complete or
// Failed when no pod is left running).
func decide(in input) *decision {
	job := in.job
	led := in.ledger
	d := &decision{status: *job.Status.DeepCopy(), indexed: isIndexed(job), backoff: led.backoff, lastFailed: led.lastFailed}
	st := &d.status
	now := in.now
	counts := countPods(in.pods)
	st.Active = counts.active
	st.Ready = &counts.ready
	st.Terminating = &counts.terminating
	var active []*corev1.Pod
	for _, p := range in.pods {
		if podset.IsActive(p) {
			active = append(active, p)
		}
	}
	if finished(job) {
		d.remove = active
		return d
	}

	// Count what finished since the last reconcile. failed gathers every
	// failed pod, counted or not: podFailurePolicy and failed indexes
	// look at all of them.
	var newSucceeded, newFailed, newIgnored, failed, running []*corev1.Pod
	account := func(p *corev1.Pod, gone bool) {
		isFailed := podFailed(job, p, gone, led.ours[p.UID])
		if isFailed {
			failed = append(failed, p)
		}
		if led.counted[p.UID] {
			return
		}
		switch {
		case p.Status.Phase == corev1.PodSucceeded:
			newSucceeded = append(newSucceeded, p)
		case !isFailed:
			if !gone && !led.ours[p.UID] {
				running = append(running, p)
			}
			return
		case countsFailure(job.Spec.PodFailurePolicy, p):
			newFailed = append(newFailed, p)
		default:
			newIgnored = append(newIgnored, p)
		}
		d.counted = append(d.counted, p.UID)
	}
	for _, p := range in.pods {
		account(p, false)
	}
	for _, p := range led.gone {
		if !led.counted[p.UID] {
			account(p, true)
		}
	}
	slices.SortFunc(failed, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	if led.fresh {
		// A ledger started afresh cannot tell which of the finished
		// pods status already counts: counting them all again would
		// count twice, so status only grows to what the pods show.
		st.Failed = max(st.Failed, int32(len(newFailed)))
		st.Succeeded = max(st.Succeeded, int32(len(newSucceeded)))
	} else {
		st.Failed += int32(len(newFailed))
		st.Succeeded += int32(len(newSucceeded))
	}
	d.backoff = led.backoff.update(newSucceeded, append(slices.Clone(newFailed), newIgnored...))

	var succeededIdx, failedIdx map[int]bool
	if d.indexed {
		completions := int(*job.Spec.Completions)
		succeededIdx = parseIndexes(st.CompletedIndexes, completions)
		for _, p := range append(slices.Clone(in.pods), led.gone...) {
			if i, ok := podIndex(p); ok && p.Status.Phase == corev1.PodSucceeded && i < completions {
				succeededIdx[i] = true
			}
		}
		st.CompletedIndexes = formatIndexes(succeededIdx)
		st.Succeeded = int32(len(succeededIdx))
		if perIndex(job) {
			failedIdx = map[int]bool{}
			if st.FailedIndexes != nil {
				failedIdx = parseIndexes(*st.FailedIndexes, completions)
			}
			for _, p := range failed {
				if i, ok := podIndex(p); ok && i < completions && indexFailed(job, p) {
					failedIdx[i] = true
				}
			}
			st.FailedIndexes = ptr.To(formatIndexes(failedIdx))
			d.lastFailed = lastFailedByIndex(failed, led.lastFailed, completions)
		}
	}

	suspended := job.Spec.Suspend != nil && *job.Spec.Suspend
	success := findCondition(st.Conditions, batchv1.JobSuccessCriteriaMet)
	failure := findCondition(st.Conditions, batchv1.JobFailureTarget)
	if success == nil && failure == nil {
		if suspended {
			var changed bool
			st.Conditions, changed = setCondition(st.Conditions, batchv1.JobSuspended, corev1.ConditionTrue, "JobSuspended", "Job suspended", now)
			if changed {
				d.events = append(d.events, event{corev1.EventTypeNormal, "Suspended", "Job suspended"})
			}
			d.remove = active
			return d
		}
		if findCondition(st.Conditions, batchv1.JobSuspended) != nil {
			st.Conditions, _ = setCondition(st.Conditions, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed", now)
			d.events = append(d.events, event{corev1.EventTypeNormal, "Resumed", "Job resumed"})
			t := metav1.NewTime(now)
			st.StartTime = &t
		}
		if st.StartTime == nil {
			t := metav1.NewTime(now)
			st.StartTime = &t
		}
		onFailure := job.Spec.Template.Spec.RestartPolicy == corev1.RestartPolicyOnFailure
		left, hasDeadline := deadlineLeft(st.StartTime, job.Spec.ActiveDeadlineSeconds, now)
		failJobMsg, failJob := failJobMessage(job, failed)
		var policyMsg string
		var policyMet bool
		if d.indexed {
			policyMsg, policyMet = matchSuccessPolicy(job.Spec.SuccessPolicy, *job.Spec.Completions, succeededIdx)
		}
		failTarget := func(reason, msg string) {
			st.Conditions, _ = setCondition(st.Conditions, batchv1.JobFailureTarget, corev1.ConditionTrue, reason, msg, now)
		}
		switch {
		case failJob:
			failTarget(batchv1.JobReasonPodFailurePolicy, failJobMsg)
		case backoffExceeded(st.Failed, counts.restarts, onFailure, job.Spec.BackoffLimit):
			failTarget(batchv1.JobReasonBackoffLimitExceeded, msgBackoffExceeded)
		case hasDeadline && left <= 0:
			failTarget(batchv1.JobReasonDeadlineExceeded, msgDeadlineExceeded)
		case perIndex(job) && job.Spec.MaxFailedIndexes != nil && len(failedIdx) > int(*job.Spec.MaxFailedIndexes):
			failTarget(batchv1.JobReasonMaxFailedIndexesExceeded, msgMaxFailedIndexesExceeded)
		case perIndex(job) && len(failedIdx) > 0 && len(failedIdx)+len(succeededIdx) >= int(*job.Spec.Completions):
			failTarget(batchv1.JobReasonFailedIndexes, msgFailedIndexes)
		case policyMet:
			st.Conditions, _ = setCondition(st.Conditions, batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, batchv1.JobReasonSuccessPolicy, policyMsg, now)
		case completionsReached(job.Spec.Completions, st.Succeeded, counts.active):
			st.Conditions, _ = setCondition(st.Conditions, batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, batchv1.JobReasonCompletionsReached, msgCompletionsReached, now)
		}
		success = findCondition(st.Conditions, batchv1.JobSuccessCriteriaMet)
		failure = findCondition(st.Conditions, batchv1.JobFailureTarget)
	}

	switch {
	case success != nil:
		d.remove = active
		if counts.active == 0 && counts.terminating == 0 {
			st.Conditions, _ = setCondition(st.Conditions, batchv1.JobComplete, corev1.ConditionTrue, success.Reason, success.Message, now)
			if st.CompletionTime == nil {
				t := metav1.NewTime(now)
				st.CompletionTime = &t
			}
			d.events = append(d.events, event{corev1.EventTypeNormal, "Completed", "Job completed"})
		}
		return d
	case failure != nil:
		// As upstream, a failing Job's pods that did not succeed count
		// as failed: they are deleted before they can finish (not those
		// the controller was already deleting for another reason).
		for _, p := range running {
			if countsFailure(job.Spec.PodFailurePolicy, p) {
				st.Failed++
			}
			d.counted = append(d.counted, p.UID)
		}
		d.remove = active
		if counts.active == 0 && counts.terminating == 0 {
			reason, msg := failure.Reason, failure.Message
			st.Conditions, _ = setCondition(st.Conditions, batchv1.JobFailed, corev1.ConditionTrue, reason, msg, now)
			d.events = append(d.events, event{corev1.EventTypeWarning, reason, msg})
		}
		return d
	}

	parallelism := int32(1)
	if job.Spec.Parallelism != nil {
		parallelism = max(*job.Spec.Parallelism, 0)
	}
	// With podReplacementPolicy Failed a pod being deleted holds its
	// place until it has failed.
	var reserved int32
	if onlyReplaceFailed(job) {
		reserved = counts.terminating
	}
	if d.indexed {
		byIndex := map[int][]*corev1.Pod{}
		for _, p := range active {
			i, ok := podIndex(p)
			if !ok {
				i = -1
			}
			byIndex[i] = append(byIndex[i], p)
		}
		skip := maps.Clone(failedIdx)
		if skip == nil {
			skip = map[int]bool{}
		}
		if reserved > 0 {
			for _, p := range in.pods {
				if i, ok := podIndex(p); ok && p.DeletionTimestamp != nil && !podset.IsTerminal(p) {
					skip[i] = true
				}
			}
		}
		d.create, d.remove = indexedPlan(*job.Spec.Completions, parallelism, succeededIdx, skip, reserved, byIndex)
	} else {
		n := nonIndexedDiff(parallelism, job.Spec.Completions, counts.active, reserved, st.Succeeded)
		for range max(n, 0) {
			d.create = append(d.create, -1)
		}
		if n < 0 {
			podset.RankForDeletion(active)
			d.remove = active[:min(int(-n), len(active))]
		}
	}
	d.holdBack(in)
	return d
}

// holdBack applies the pod failure back-off to the planned creations: the
// Job's (failures since the last success), or with backoffLimitPerIndex
// each index's own (failures of that index), and sets requeue to when the
// first held-back pod may be created.
func (d *decision) holdBack(in input) {
	if len(d.create) == 0 {
		return
	}
	if !perIndex(in.job) {
		if wait := d.backoff.remaining(in.now, in.backoff, in.maxBackoff); wait > 0 {
			d.create, d.requeue = nil, wait
		}
		return
	}
	var ready []int
	d.failures = map[int][2]int32{}
	for _, ix := range d.create {
		last := d.lastFailed[ix]
		counted, ignored := replacementFailures(in.job, last)
		if last != nil {
			if wait := backoffRemaining(counted+ignored, finishTime(last), in.now, in.backoff, in.maxBackoff); wait > 0 {
				if d.requeue == 0 || wait < d.requeue {
					d.requeue = wait
				}
				continue
			}
		}
		ready = append(ready, ix)
		d.failures[ix] = [2]int32{counted, ignored}
	}
	d.create = ready
}

// podFailed reports whether p counts as a failed pod of job: it failed;
// or, unless the Job's podReplacementPolicy is Failed, it is being
// deleted (or was deleted, gone) before it succeeded, as when it is
// evicted. A pod the controller deletes itself (ours) is not a failure
// until it actually fails. A pod gone before it finished counts as failed
// whatever the policy: it can no longer fail.
func podFailed(job *batchv1.Job, p *corev1.Pod, gone, ours bool) bool {
	switch {
	case p.Status.Phase == corev1.PodFailed:
		return true
	case p.Status.Phase == corev1.PodSucceeded || ours:
		return false
	case gone:
		return true
	}
	return p.DeletionTimestamp != nil && !onlyReplaceFailed(job)
}

// onlyReplaceFailed reports whether job replaces a pod only once it has
// failed, not while it is being deleted (podReplacementPolicy Failed).
func onlyReplaceFailed(job *batchv1.Job) bool {
	return job.Spec.PodReplacementPolicy != nil && *job.Spec.PodReplacementPolicy == batchv1.Failed
}

// podCounts summarises the pods a Job owns.
type podCounts struct {
	active      int32 // not terminal, not being deleted
	ready       int32 // active and Ready
	succeeded   int32
	failed      int32
	terminating int32 // being deleted and not terminal
	// restarts is the sum of container restarts of the Pending and
	// Running pods: with restartPolicy OnFailure each restart is a retry
	// that counts against backoffLimit.
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
		if p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodPending {
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
// delete (< 0) given its spec, its active pods, the pods being deleted
// that still hold a place (reserved) and its succeeded pods. With
// completions nil (a work queue) no pod is created once any pod has
// succeeded: the remaining ones are left to finish.
func nonIndexedDiff(parallelism int32, completions *int32, active, reserved, succeeded int32) int32 {
	want := parallelism
	if completions == nil {
		if succeeded > 0 {
			return 0
		}
	} else {
		want = min(parallelism, max(*completions-succeeded, 0))
	}
	want = max(want, 0)
	if active > want {
		return want - active
	}
	return max(want-active-reserved, 0)
}

// indexedPlan decides, for an Indexed Job with completions and
// parallelism, which indexes get a new pod (lowest first) and which active
// pods to delete: pods for an index already succeeded, out of range, a
// second pod for the same index, and the highest indexes beyond
// parallelism. activeByIndex maps an index to its active pods (pods without
// a valid index are under key -1); indexes in skip get no new pod (failed
// ones, and with podReplacementPolicy Failed those whose pod is still being
// deleted), and reserved pods being deleted take up parallelism.
func indexedPlan(completions, parallelism int32, succeeded, skip map[int]bool, reserved int32, activeByIndex map[int][]*corev1.Pod) (create []int, remove []*corev1.Pod) {
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
	room := int(parallelism) - len(keep) - int(reserved)
	running := make(map[int]bool, len(keep))
	for _, idx := range keep {
		running[idx] = true
	}
	for idx := 0; idx < int(completions) && len(create) < room; idx++ {
		if !succeeded[idx] && !running[idx] && !skip[idx] {
			create = append(create, idx)
		}
	}
	slices.SortFunc(remove, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return create, remove
}

// backoffExceeded reports whether a Job's failures exceed backoffLimit
// (nil: upstream's default 6) as upstream judges it: more failed pods
// than the limit, or, with restartPolicy OnFailure, as many container
// restarts of its running pods as the limit (any restart for a limit of
// 0).
func backoffExceeded(failed, restarts int32, onFailure bool, limit *int32) bool {
	l := int32(6)
	if limit != nil {
		l = *limit
	}
	if failed > l {
		return true
	}
	if !onFailure {
		return false
	}
	if l == 0 {
		return restarts > 0
	}
	return restarts >= l
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

// formatIndexes renders a set of indexes as upstream's completedIndexes
// and failedIndexes: sorted, comma separated, runs of three or more
// collapsed to "a-b" (a run of two stays "a,b", as upstream writes it).
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
		switch {
		case j == i+1:
			b.WriteByte(',')
			b.WriteString(strconv.Itoa(idx[j]))
		case j > i:
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
