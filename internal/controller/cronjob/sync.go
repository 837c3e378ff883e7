package cronjob

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// nextSlack is added to the wait for the next schedule time so the
// reconcile lands just after it, not a hair before.
const nextSlack = 100 * time.Millisecond

// jobState reports whether a Job finished and whether it succeeded.
func jobState(j *batchv1.Job) (finished, succeeded bool) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, true
		case batchv1.JobFailed:
			return true, false
		}
	}
	return false, false
}

// finishTime is when a finished Job ended, for ordering history.
func finishTime(j *batchv1.Job) time.Time {
	if j.Status.CompletionTime != nil {
		return j.Status.CompletionTime.Time
	}
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return j.CreationTimestamp.Time
}

// historyToDelete returns the finished Jobs beyond the history limits
// (nil limits: upstream's defaults 3 successful, 1 failed), oldest first.
func historyToDelete(jobs []*batchv1.Job, successfulLimit, failedLimit *int32) []*batchv1.Job {
	okLimit, failLimit := int32(3), int32(1)
	if successfulLimit != nil {
		okLimit = *successfulLimit
	}
	if failedLimit != nil {
		failLimit = *failedLimit
	}
	var ok, failed []*batchv1.Job
	for _, j := range jobs {
		if fin, succ := jobState(j); fin && j.DeletionTimestamp == nil {
			if succ {
				ok = append(ok, j)
			} else {
				failed = append(failed, j)
			}
		}
	}
	var out []*batchv1.Job
	for _, set := range []struct {
		jobs  []*batchv1.Job
		limit int32
	}{{ok, okLimit}, {failed, failLimit}} {
		slices.SortStableFunc(set.jobs, func(a, b *batchv1.Job) int {
			if c := finishTime(a).Compare(finishTime(b)); c != 0 {
				return c
			}
			return strings.Compare(a.Name, b.Name)
		})
		if extra := len(set.jobs) - int(max(set.limit, 0)); extra > 0 {
			out = append(out, set.jobs[:extra]...)
		}
	}
	return out
}

// sync reconciles one CronJob: status from its Jobs, history cleanup, and
// the Job for the most recent due schedule time.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, n, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	cj, err := c.cronJobs.CronJobs(ns).Get(n)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cronjob %s: %w", key, err)
	}
	if cj.DeletionTimestamp != nil {
		return nil
	}
	now := c.clock.Now()
	status := cj.Status.DeepCopy()
	jobs := c.childJobs(cj)

	var active []*batchv1.Job
	for _, j := range jobs {
		fin, succ := jobState(j)
		if !fin {
			if j.DeletionTimestamp == nil {
				active = append(active, j)
			}
			continue
		}
		if succ && j.Status.CompletionTime != nil && (status.LastSuccessfulTime == nil || status.LastSuccessfulTime.Before(j.Status.CompletionTime)) {
			t := *j.Status.CompletionTime
			status.LastSuccessfulTime = &t
		}
	}
	for _, j := range historyToDelete(jobs, cj.Spec.SuccessfulJobsHistoryLimit, cj.Spec.FailedJobsHistoryLimit) {
		if err := c.deleteJob(ctx, cj, j); err != nil {
			return err
		}
	}

	err = c.schedule(ctx, cj, status, &active, now)
	status.Active = refs(active)
	if !apiequality.Semantic.DeepEqual(cj.Status, *status) {
		upd := cj.DeepCopy()
		upd.Status = *status
		if _, uerr := c.client.BatchV1().CronJobs(ns).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); uerr != nil {
			return fmt.Errorf("cronjob %s: update status: %w", key, uerr)
		}
	}
	return err
}

// schedule creates the Job for the most recent due schedule time, if any,
// applying concurrencyPolicy, and requeues the CronJob for its next time.
// It updates status.lastScheduleTime and active.
func (c *Controller) schedule(ctx context.Context, cj *batchv1.CronJob, status *batchv1.CronJobStatus, active *[]*batchv1.Job, now time.Time) error {
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		return nil
	}
	sched, loc, err := parseSchedule(cj)
	if err != nil {
		// Not retried: a spec change brings the CronJob back.
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnparseableSchedule", "unparseable schedule: %v", err)
		return nil
	}
	now = now.In(loc)
	key := cj.Namespace + "/" + cj.Name
	if next := sched.Next(now); !next.IsZero() {
		c.queue.AddAfter(key, next.Sub(now)+nextSlack)
	}
	viewed := cj.DeepCopy()
	viewed.Status = *status
	t, ok := mostRecent(sched, scheduleWindow(viewed, now).In(loc), now)
	if !ok {
		return nil
	}
	// The Job of time t may already run: an earlier pass created it and
	// lost its status write (a conflict). It is this run, not a prior one
	// that concurrencyPolicy should weigh; record that t was scheduled.
	if slices.ContainsFunc(*active, func(j *batchv1.Job) bool { return j.Name == jobName(cj.Name, t) }) {
		st := metav1.NewTime(t)
		status.LastScheduleTime = &st
		return nil
	}
	switch decide(cj.Spec.ConcurrencyPolicy, len(*active)) {
	case actSkip:
		c.recorder.Eventf(cj, corev1.EventTypeNormal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
		return nil
	case actReplaceAndCreate:
		for _, j := range *active {
			if err := c.deleteJob(ctx, cj, j); err != nil {
				return err
			}
		}
		*active = nil
	}
	job := newJob(cj, t)
	got, err := c.client.BatchV1().Jobs(cj.Namespace).Create(ctx, job, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		// Created by an earlier pass whose status write was lost; adopt
		// it as this run if it is ours.
		existing, gerr := c.client.BatchV1().Jobs(cj.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		if gerr != nil {
			return fmt.Errorf("cronjob %s: get job %s: %w", key, job.Name, gerr)
		}
		if ref := metav1.GetControllerOf(existing); ref == nil || ref.UID != cj.UID {
			return fmt.Errorf("cronjob %s: job %s exists and is not ours", key, job.Name)
		}
		got = existing
	case err != nil:
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
		return fmt.Errorf("cronjob %s: create job: %w", key, err)
	default:
		c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulCreate", "Created job %s", got.Name)
	}
	if fin, _ := jobState(got); !fin && !slices.ContainsFunc(*active, func(j *batchv1.Job) bool { return j.UID == got.UID }) {
		*active = append(*active, got)
	}
	st := metav1.NewTime(t)
	status.LastScheduleTime = &st
	return nil
}

// newJob builds the Job of cj for scheduled time t.
func newJob(cj *batchv1.CronJob, t time.Time) *batchv1.Job {
	tmpl := cj.Spec.JobTemplate.DeepCopy()
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            jobName(cj.Name, t),
			Namespace:       cj.Namespace,
			Labels:          tmpl.Labels,
			Annotations:     tmpl.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, gvk)},
		},
		Spec: tmpl.Spec,
	}
	if j.Annotations == nil {
		j.Annotations = map[string]string{}
	}
	j.Annotations[batchv1.CronJobScheduledTimestampAnnotation] = t.Format(time.RFC3339)
	return j
}

// deleteJob deletes one of cj's Jobs with Background propagation.
func (c *Controller) deleteJob(ctx context.Context, cj *batchv1.CronJob, j *batchv1.Job) error {
	policy := metav1.DeletePropagationBackground
	uid := j.UID
	err := c.client.BatchV1().Jobs(j.Namespace).Delete(ctx, j.Name, metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedDelete", "Deleted job: %v", err)
		return fmt.Errorf("cronjob %s/%s: delete job %s: %w", cj.Namespace, cj.Name, j.Name, err)
	}
	if err == nil {
		c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %s", j.Name)
	}
	return nil
}

// childJobs returns the Jobs cj controls.
func (c *Controller) childJobs(cj *batchv1.CronJob) []*batchv1.Job {
	objs, err := c.jobs.ByIndex(indexByController, string(cj.UID))
	if err != nil {
		return nil
	}
	out := make([]*batchv1.Job, 0, len(objs))
	for _, o := range objs {
		if j, ok := o.(*batchv1.Job); ok && j.Namespace == cj.Namespace {
			out = append(out, j)
		}
	}
	return out
}

// refs lists Jobs as status.active references, sorted by name.
func refs(jobs []*batchv1.Job) []corev1.ObjectReference {
	if len(jobs) == 0 {
		return nil
	}
	out := make([]corev1.ObjectReference, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, corev1.ObjectReference{
			Kind: "Job", APIVersion: batchv1.SchemeGroupVersion.String(), Namespace: j.Namespace, Name: j.Name, UID: j.UID,
		})
	}
	slices.SortFunc(out, func(a, b corev1.ObjectReference) int { return strings.Compare(a.Name, b.Name) })
	return out
}
