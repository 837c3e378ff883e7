package job

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func perIndexJob(completions, limit int32, mutate func(*batchv1.Job)) *batchv1.Job {
	return stormJob(func(j *batchv1.Job) {
		j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		j.Spec.Completions, j.Spec.Parallelism = ptr.To(completions), ptr.To(completions)
		j.Spec.BackoffLimitPerIndex = ptr.To(limit)
		j.Spec.BackoffLimit = ptr.To[int32](1 << 30)
		if mutate != nil {
			mutate(j)
		}
	})
}

func (s *sim) byIndex() map[int]*corev1.Pod {
	m := map[int]*corev1.Pod{}
	for _, p := range s.active() {
		ix, _ := podIndex(p)
		m[ix] = p
	}
	return m
}

func TestDecideBackoffLimitPerIndex(t *testing.T) {
	t.Run("an index over its limit fails and gets no pod", func(t *testing.T) {
		s := newSim(t, perIndexJob(3, 1, nil))
		s.step()
		for failure := range 2 {
			s.terminate(s.byIndex()[1], corev1.PodFailed, 1)
			d := s.step()
			if failure == 0 {
				s.now = s.now.Add(d.requeue)
				if d := s.step(); len(d.create) != 1 || d.create[0] != 1 {
					t.Fatalf("first failure of index 1: created %v, want [1]", d.create)
				}
				if got := s.byIndex()[1].Annotations[batchv1.JobIndexFailureCountAnnotation]; got != "1" {
					t.Fatalf("replacement failure count %q, want 1", got)
				}
			}
		}
		if got := ptr.Deref(s.job.Status.FailedIndexes, "<nil>"); got != "1" {
			t.Fatalf("failedIndexes %q, want 1", got)
		}
		s.now = s.now.Add(MaxPodFailureBackoff)
		if d := s.step(); len(d.create) != 0 || d.requeue != 0 || finished(s.job) {
			t.Fatalf("failed index: created %v, requeue %v, conditions %+v; want nothing", d.create, d.requeue, s.job.Status.Conditions)
		}
		for ix, p := range s.byIndex() {
			if ix != 1 {
				s.terminate(p, corev1.PodSucceeded, 0)
			}
		}
		s.step()
		c := findCondition(s.job.Status.Conditions, batchv1.JobFailed)
		if c == nil || c.Reason != batchv1.JobReasonFailedIndexes || c.Message != "Job has failed indexes" {
			t.Fatalf("conditions %+v, want Failed FailedIndexes", s.job.Status.Conditions)
		}
		if s.job.Status.CompletedIndexes != "0,2" || s.job.Status.Failed != 2 {
			t.Errorf("completedIndexes %q failed %d, want 0,2 and 2", s.job.Status.CompletedIndexes, s.job.Status.Failed)
		}
	})
	t.Run("maxFailedIndexes", func(t *testing.T) {
		s := newSim(t, perIndexJob(4, 0, func(j *batchv1.Job) { j.Spec.MaxFailedIndexes = ptr.To[int32](1) }))
		s.step()
		s.terminate(s.byIndex()[0], corev1.PodFailed, 1)
		s.step()
		if finished(s.job) || findCondition(s.job.Status.Conditions, batchv1.JobFailureTarget) != nil {
			t.Fatalf("one failed index of at most 1: conditions %+v", s.job.Status.Conditions)
		}
		s.terminate(s.byIndex()[3], corev1.PodFailed, 1)
		d := s.step()
		c := findCondition(s.job.Status.Conditions, batchv1.JobFailureTarget)
		if c == nil || c.Reason != batchv1.JobReasonMaxFailedIndexesExceeded || c.Message != "Job has exceeded the specified maximal number of failed indexes" {
			t.Fatalf("conditions %+v, want FailureTarget MaxFailedIndexesExceeded", s.job.Status.Conditions)
		}
		if len(d.remove) != 2 || ptr.Deref(s.job.Status.FailedIndexes, "") != "0,3" {
			t.Errorf("removed %d pods, failedIndexes %q; want the 2 running, 0,3", len(d.remove), ptr.Deref(s.job.Status.FailedIndexes, ""))
		}
	})
	t.Run("FailIndex rule fails the index at once", func(t *testing.T) {
		s := newSim(t, perIndexJob(2, 5, func(j *batchv1.Job) {
			j.Spec.PodReplacementPolicy = ptr.To(batchv1.Failed)
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
				{Action: batchv1.PodFailurePolicyActionFailIndex, OnExitCodes: exitCodes(batchv1.PodFailurePolicyOnExitCodesOpIn, "", 5)},
				{Action: batchv1.PodFailurePolicyActionIgnore, OnExitCodes: exitCodes(batchv1.PodFailurePolicyOnExitCodesOpIn, "", 3)},
			}}
		}))
		s.step()
		s.terminate(s.byIndex()[0], corev1.PodFailed, 3)
		d := s.step()
		s.now = s.now.Add(d.requeue)
		s.step()
		p := s.byIndex()[0]
		if p == nil || p.Annotations[batchv1.JobIndexFailureCountAnnotation] != "0" || p.Annotations[batchv1.JobIndexIgnoredFailureCountAnnotation] != "1" {
			t.Fatalf("replacement after an ignored failure: %v", p)
		}
		s.terminate(p, corev1.PodFailed, 5)
		s.step()
		if got := ptr.Deref(s.job.Status.FailedIndexes, ""); got != "0" || s.job.Status.Failed != 1 {
			t.Errorf("failedIndexes %q failed %d, want 0 and 1 (the ignored failure not counted)", got, s.job.Status.Failed)
		}
	})
}
