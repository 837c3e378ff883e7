package job

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-io/skiff/internal/controller/podset"
)

// Event reasons and condition messages, as upstream words them.
const (
	msgCompletionsReached = "Reached expected number of succeeded pods"
	msgBackoffExceeded    = "Job has reached the specified backoff limit"
	msgDeadlineExceeded   = "Job was active longer than specified deadline"

	// completionIndexEnv is the env var an Indexed Job's containers read
	// their index from.
	completionIndexEnv = "JOB_COMPLETION_INDEX"
)

// plan is what one reconcile of a Job does to its pods.
type plan struct {
	create  []int // completion indexes of new pods (-1: not indexed)
	remove  []*corev1.Pod
	indexed bool
	// events are recorded once the status that goes with them is written,
	// so a lost write (a conflict with a stale cache) does not repeat them.
	events []event
}

type event struct{ typ, reason, message string }

// sync reconciles one Job: it counts its pods, decides the Job's phase
// (running, suspended, succeeding, failing, done), creates or deletes pods
// accordingly and writes status when it changed.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, n, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	job, err := c.jobs.Jobs(ns).Get(n)
	if apierrors.IsNotFound(err) {
		c.exp.Forget(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("job %s: %w", key, err)
	}
	if job.DeletionTimestamp != nil {
		return nil
	}
	now := c.clock.Now()
	pods := c.ownedPods(job)
	counts := countPods(pods)
	status := job.Status.DeepCopy()
	var active []*corev1.Pod
	for _, p := range pods {
		if podset.IsActive(p) {
			active = append(active, p)
		}
	}

	completions := job.Spec.Completions
	parallelism := int32(1)
	if job.Spec.Parallelism != nil {
		parallelism = max(*job.Spec.Parallelism, 0)
	}
	indexed := job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion && completions != nil
	var succeededIdx map[int]bool
	if indexed {
		succeededIdx = parseIndexes(status.CompletedIndexes, int(*completions))
		for _, p := range pods {
			if i, ok := podIndex(p); ok && p.Status.Phase == corev1.PodSucceeded && i < int(*completions) {
				succeededIdx[i] = true
			}
		}
		status.CompletedIndexes = formatIndexes(succeededIdx)
		status.Succeeded = int32(len(succeededIdx))
	} else {
		status.Succeeded = max(status.Succeeded, counts.succeeded)
	}
	status.Failed = max(status.Failed, counts.failed)
	status.Active = counts.active
	status.Ready = &counts.ready
	status.Terminating = &counts.terminating

	var p plan
	p.indexed = indexed
	if finished(job) {
		p.remove = active
	} else {
		p = c.decide(job, status, counts, active, succeededIdx, parallelism, now)
	}

	if len(p.create)+len(p.remove) > 0 {
		if !c.exp.Satisfied(key, now) {
			p.create, p.remove = nil, nil
		} else {
			created := c.act(ctx, key, job, p, now)
			status.Active += created
		}
	}

	if !apiequality.Semantic.DeepEqual(job.Status, *status) {
		upd := job.DeepCopy()
		upd.Status = *status
		if _, err := c.client.BatchV1().Jobs(ns).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("job %s: update status: %w", key, err)
		}
		for _, e := range p.events {
			c.recorder.Event(job, e.typ, e.reason, e.message)
		}
	}
	if !finished(&batchv1.Job{Status: *status}) && !(job.Spec.Suspend != nil && *job.Spec.Suspend) {
		if left, ok := deadlineLeft(status.StartTime, job.Spec.ActiveDeadlineSeconds, now); ok && left > 0 {
			c.queue.AddAfter(key, left)
		}
	}
	return nil
}

// decide updates status conditions and start time for an unfinished Job
// and returns the pods to create and delete.
func (c *Controller) decide(job *batchv1.Job, status *batchv1.JobStatus, counts podCounts, active []*corev1.Pod, succeededIdx map[int]bool, parallelism int32, now time.Time) plan {
	p := plan{indexed: succeededIdx != nil}
	suspended := job.Spec.Suspend != nil && *job.Spec.Suspend
	success := findCondition(status.Conditions, batchv1.JobSuccessCriteriaMet)
	failure := findCondition(status.Conditions, batchv1.JobFailureTarget)

	if success == nil && failure == nil {
		if suspended {
			var changed bool
			status.Conditions, changed = setCondition(status.Conditions, batchv1.JobSuspended, corev1.ConditionTrue, "JobSuspended", "Job suspended", now)
			if changed {
				p.events = append(p.events, event{corev1.EventTypeNormal, "Suspended", "Job suspended"})
			}
			p.remove = active
			return p
		}
		if findCondition(status.Conditions, batchv1.JobSuspended) != nil {
			status.Conditions, _ = setCondition(status.Conditions, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed", now)
			p.events = append(p.events, event{corev1.EventTypeNormal, "Resumed", "Job resumed"})
			t := metav1.NewTime(now)
			status.StartTime = &t
		}
		if status.StartTime == nil {
			t := metav1.NewTime(now)
			status.StartTime = &t
		}
		onFailure := job.Spec.Template.Spec.RestartPolicy == corev1.RestartPolicyOnFailure
		left, hasDeadline := deadlineLeft(status.StartTime, job.Spec.ActiveDeadlineSeconds, now)
		switch {
		case completionsReached(job.Spec.Completions, status.Succeeded, counts.active):
			status.Conditions, _ = setCondition(status.Conditions, batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, batchv1.JobReasonCompletionsReached, msgCompletionsReached, now)
		case backoffExceeded(status.Failed, counts.restarts, onFailure, job.Spec.BackoffLimit):
			status.Conditions, _ = setCondition(status.Conditions, batchv1.JobFailureTarget, corev1.ConditionTrue, batchv1.JobReasonBackoffLimitExceeded, msgBackoffExceeded, now)
		case hasDeadline && left <= 0:
			status.Conditions, _ = setCondition(status.Conditions, batchv1.JobFailureTarget, corev1.ConditionTrue, batchv1.JobReasonDeadlineExceeded, msgDeadlineExceeded, now)
		}
		success = findCondition(status.Conditions, batchv1.JobSuccessCriteriaMet)
		failure = findCondition(status.Conditions, batchv1.JobFailureTarget)
	}

	switch {
	case success != nil:
		p.remove = active
		if counts.active == 0 && counts.terminating == 0 {
			status.Conditions, _ = setCondition(status.Conditions, batchv1.JobComplete, corev1.ConditionTrue, success.Reason, success.Message, now)
			if status.CompletionTime == nil {
				t := metav1.NewTime(now)
				status.CompletionTime = &t
			}
			p.events = append(p.events, event{corev1.EventTypeNormal, "Completed", "Job completed"})
		}
	case failure != nil:
		p.remove = active
		if counts.active == 0 && counts.terminating == 0 {
			reason, msg := failure.Reason, failure.Message
			status.Conditions, _ = setCondition(status.Conditions, batchv1.JobFailed, corev1.ConditionTrue, reason, msg, now)
			p.events = append(p.events, event{corev1.EventTypeWarning, reason, msg})
		}
	case p.indexed:
		byIndex := map[int][]*corev1.Pod{}
		for _, pod := range active {
			i, ok := podIndex(pod)
			if !ok {
				i = -1
			}
			byIndex[i] = append(byIndex[i], pod)
		}
		p.create, p.remove = indexedPlan(*job.Spec.Completions, parallelism, succeededIdx, byIndex)
	default:
		d := nonIndexedDiff(parallelism, job.Spec.Completions, counts.active, status.Succeeded)
		for range max(d, 0) {
			p.create = append(p.create, -1)
		}
		if d < 0 {
			podset.RankForDeletion(active)
			p.remove = active[:min(int(-d), len(active))]
		}
	}
	return p
}

// act deletes and creates pods as planned (creations in slow-start
// batches: 1, 2, 4, ... stopping at the first failing batch) under
// expectations, and returns how many pods it created.
func (c *Controller) act(ctx context.Context, key string, job *batchv1.Job, p plan, now time.Time) int32 {
	delKeys := make([]string, len(p.remove))
	for i, pod := range p.remove {
		delKeys[i] = pod.Namespace + "/" + pod.Name
	}
	c.exp.Expect(key, len(p.create), delKeys, now)
	for i, pod := range p.remove {
		uid := pod.UID
		err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil {
			c.exp.DeletionObserved(key, delKeys[i])
			if !apierrors.IsNotFound(err) {
				c.log.Info("deleting pod failed", "job", key, "pod", pod.Name, "err", err)
				c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
			}
			continue
		}
		c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", pod.Name)
	}
	var created int32
	var mu sync.Mutex
	rest := p.create
	for batch := 1; len(rest) > 0; batch *= 2 {
		n := min(batch, len(rest))
		var wg sync.WaitGroup
		var failed bool
		for _, idx := range rest[:n] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pod := newPod(job, idx, p.indexed)
				got, err := c.client.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					c.exp.CreationObserved(key)
					failed = true
					if !errors.Is(err, context.Canceled) {
						c.log.Info("creating pod failed", "job", key, "err", err)
						c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
					}
					return
				}
				created++
				c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", got.Name)
			}()
		}
		wg.Wait()
		rest = rest[n:]
		if failed {
			for range rest {
				c.exp.CreationObserved(key)
			}
			break
		}
	}
	return created
}

// newPod builds a pod of job from its template; for an Indexed Job it
// carries the completion index in an annotation and a label, as the
// hostname "<job>-<index>" (unless the template sets one) and in the
// JOB_COMPLETION_INDEX env var of every container.
func newPod(job *batchv1.Job, index int, indexed bool) *corev1.Pod {
	gen := job.Name + "-"
	if indexed {
		gen = job.Name + "-" + strconv.Itoa(index) + "-"
	}
	pod := podset.FromTemplate(&job.Spec.Template, job, gvk, "", gen)
	if !indexed {
		return pod
	}
	idx := strconv.Itoa(index)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Annotations[batchv1.JobCompletionIndexAnnotation] = idx
	pod.Labels[batchv1.JobCompletionIndexAnnotation] = idx
	if pod.Spec.Hostname == "" {
		pod.Spec.Hostname = job.Name + "-" + idx
	}
	env := corev1.EnvVar{Name: completionIndexEnv, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
		FieldPath: "metadata.annotations['" + batchv1.JobCompletionIndexAnnotation + "']",
	}}}
	addEnv := func(cs []corev1.Container) {
		for i := range cs {
			if !hasEnv(cs[i].Env, completionIndexEnv) {
				cs[i].Env = append(cs[i].Env, env)
			}
		}
	}
	addEnv(pod.Spec.InitContainers)
	addEnv(pod.Spec.Containers)
	return pod
}

func hasEnv(env []corev1.EnvVar, name string) bool {
	for _, e := range env {
		if e.Name == name {
			return true
		}
	}
	return false
}

// ownedPods returns the pods job controls that match its selector.
func (c *Controller) ownedPods(job *batchv1.Job) []*corev1.Pod {
	owned, err := podset.PodsControlledBy(c.pods, job.UID)
	if err != nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		sel = labels.Nothing()
	}
	out := make([]*corev1.Pod, 0, len(owned))
	for _, p := range owned {
		if p.Namespace == job.Namespace && sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out
}
