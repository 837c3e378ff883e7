package job

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func TestMatchSuccessPolicy(t *testing.T) {
	set := func(ix ...int) map[int]bool {
		m := map[int]bool{}
		for _, i := range ix {
			m[i] = true
		}
		return m
	}
	idx := func(s string, count *int32) batchv1.SuccessPolicyRule {
		return batchv1.SuccessPolicyRule{SucceededIndexes: ptr.To(s), SucceededCount: count}
	}
	tests := []struct {
		name      string
		rules     []batchv1.SuccessPolicyRule
		succeeded map[int]bool
		wantMsg   string
		wantOK    bool
	}{
		{name: "all listed indexes succeeded", rules: []batchv1.SuccessPolicyRule{idx("0,2-3", nil)}, succeeded: set(0, 2, 3),
			wantMsg: "Matched rules at index 0", wantOK: true},
		{name: "one listed index missing", rules: []batchv1.SuccessPolicyRule{idx("0,2-3", nil)}, succeeded: set(0, 1, 2)},
		{name: "enough of the listed indexes", rules: []batchv1.SuccessPolicyRule{idx("0-4", ptr.To[int32](2))}, succeeded: set(1, 4, 7),
			wantMsg: "Matched rules at index 0", wantOK: true},
		{name: "too few of the listed indexes", rules: []batchv1.SuccessPolicyRule{idx("0-4", ptr.To[int32](2))}, succeeded: set(1, 7, 8)},
		{name: "count alone", rules: []batchv1.SuccessPolicyRule{idx("9", nil), {SucceededCount: ptr.To[int32](3)}}, succeeded: set(1, 7, 8),
			wantMsg: "Matched rules at index 1", wantOK: true},
		{name: "listed indexes beyond completions never match", rules: []batchv1.SuccessPolicyRule{idx("10-12", nil)}, succeeded: set(0, 1)},
		{name: "nothing succeeded", rules: []batchv1.SuccessPolicyRule{{SucceededCount: ptr.To[int32](0)}}, succeeded: set()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, ok := matchSuccessPolicy(&batchv1.SuccessPolicy{Rules: tt.rules}, 10, tt.succeeded)
			if msg != tt.wantMsg || ok != tt.wantOK {
				t.Errorf("matchSuccessPolicy = %q, %v; want %q, %v", msg, ok, tt.wantMsg, tt.wantOK)
			}
		})
	}
	if _, ok := matchSuccessPolicy(nil, 10, set(1)); ok {
		t.Error("nil policy matched")
	}
}

// TestDecideSuccessPolicy: once the rule is met the Job gets
// SuccessCriteriaMet (reason SuccessPolicy), its other pods are deleted,
// and it is Complete when none is left.
func TestDecideSuccessPolicy(t *testing.T) {
	s := newSim(t, stormJob(func(j *batchv1.Job) {
		j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](4), ptr.To[int32](4)
		j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededIndexes: ptr.To("1")}}}
	}))
	s.step()
	var one *corev1.Pod
	for _, p := range s.active() {
		if ix, _ := podIndex(p); ix == 1 {
			one = p
		}
	}
	s.terminate(one, corev1.PodSucceeded, 0)
	d := s.step()
	if len(d.remove) != 3 {
		t.Errorf("removed %d pods, want the 3 others", len(d.remove))
	}
	c := findCondition(s.job.Status.Conditions, batchv1.JobSuccessCriteriaMet)
	if c == nil || c.Reason != batchv1.JobReasonSuccessPolicy || c.Message != "Matched rules at index 0" {
		t.Fatalf("conditions %+v, want SuccessCriteriaMet SuccessPolicy", s.job.Status.Conditions)
	}
	if findCondition(s.job.Status.Conditions, batchv1.JobComplete) != nil {
		t.Fatal("Complete while pods were still running")
	}
	s.step() // the deleted pods are gone
	if c := findCondition(s.job.Status.Conditions, batchv1.JobComplete); c == nil || c.Reason != batchv1.JobReasonSuccessPolicy {
		t.Errorf("conditions %+v, want Complete once the pods are gone", s.job.Status.Conditions)
	}
	if s.job.Status.CompletedIndexes != "1" || s.job.Status.Succeeded != 1 || s.job.Status.Failed != 0 {
		t.Errorf("status %+v, want completedIndexes 1, succeeded 1, failed 0", s.job.Status)
	}
}
