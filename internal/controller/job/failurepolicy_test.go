package job

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func exitCodes(op batchv1.PodFailurePolicyOnExitCodesOperator, container string, codes ...int32) *batchv1.PodFailurePolicyOnExitCodesRequirement {
	r := &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: op, Values: codes}
	if container != "" {
		r.ContainerName = ptr.To(container)
	}
	return r
}

func failedWith(codes map[string]int32, init map[string]int32, conds ...corev1.PodCondition) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Status: corev1.PodStatus{Phase: corev1.PodFailed, Conditions: conds}}
	for _, set := range []struct {
		m   map[string]int32
		out *[]corev1.ContainerStatus
	}{{codes, &p.Status.ContainerStatuses}, {init, &p.Status.InitContainerStatuses}} {
		for name, code := range set.m {
			*set.out = append(*set.out, corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}})
		}
	}
	return p
}

func TestMatchFailurePolicy(t *testing.T) {
	in, notIn := batchv1.PodFailurePolicyOnExitCodesOpIn, batchv1.PodFailurePolicyOnExitCodesOpNotIn
	disruption := corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}
	rule := func(a batchv1.PodFailurePolicyAction, codes *batchv1.PodFailurePolicyOnExitCodesRequirement, conds ...batchv1.PodFailurePolicyOnPodConditionsPattern) batchv1.PodFailurePolicyRule {
		return batchv1.PodFailurePolicyRule{Action: a, OnExitCodes: codes, OnPodConditions: conds}
	}
	onDisruption := batchv1.PodFailurePolicyOnPodConditionsPattern{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}
	tests := []struct {
		name       string
		rules      []batchv1.PodFailurePolicyRule
		pod        *corev1.Pod
		wantAction batchv1.PodFailurePolicyAction
		wantMsg    string
		wantOK     bool
	}{
		{name: "FailJob on exit code In",
			rules: []batchv1.PodFailurePolicyRule{rule(batchv1.PodFailurePolicyActionFailJob, exitCodes(in, "", 42))},
			pod:   failedWith(map[string]int32{"main": 42}, nil), wantAction: batchv1.PodFailurePolicyActionFailJob, wantOK: true,
			wantMsg: "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0"},
		{name: "exit code not in the list",
			rules: []batchv1.PodFailurePolicyRule{rule(batchv1.PodFailurePolicyActionFailJob, exitCodes(in, "", 42))},
			pod:   failedWith(map[string]int32{"main": 1}, nil)},
		{name: "NotIn",
			rules: []batchv1.PodFailurePolicyRule{rule(batchv1.PodFailurePolicyActionCount, exitCodes(notIn, "", 1, 2))},
			pod:   failedWith(map[string]int32{"main": 3}, nil), wantAction: batchv1.PodFailurePolicyActionCount, wantOK: true},
		{name: "exit code 0 never matches NotIn",
			rules: []batchv1.PodFailurePolicyRule{rule(batchv1.PodFailurePolicyActionFailJob, exitCodes(notIn, "", 1))},
			pod:   failedWith(map[string]int32{"main": 0}, nil)},
		{name: "containerName selects the container",
			rules: []batchv1.PodFailurePolicyRule{rule(batchv1.PodFailurePolicyActionFailJob, exitCodes(in, "other", 42))},
			pod:   failedWith(map[string]int32{"main": 42}, nil)},
		{name: "init container",
			rules: []batchv1.PodFailurePolicyRule{rule(batchv1.PodFailurePolicyActionFailJob, exitCodes(in, "setup", 7))},
			pod:   failedWith(nil, map[string]int32{"setup": 7}), wantAction: batchv1.PodFailurePolicyActionFailJob, wantOK: true,
			wantMsg: "Container setup for pod ns/p failed with exit code 7 matching FailJob rule at index 0"},
		{name: "Ignore on a pod condition",
			rules: []batchv1.PodFailurePolicyRule{rule(batchv1.PodFailurePolicyActionIgnore, nil, onDisruption)},
			pod:   failedWith(nil, nil, disruption), wantAction: batchv1.PodFailurePolicyActionIgnore, wantOK: true},
		{name: "FailJob on a pod condition",
			rules: []batchv1.PodFailurePolicyRule{
				rule(batchv1.PodFailurePolicyActionIgnore, exitCodes(in, "", 3)),
				rule(batchv1.PodFailurePolicyActionFailJob, nil, onDisruption)},
			pod: failedWith(map[string]int32{"main": 1}, nil, disruption), wantAction: batchv1.PodFailurePolicyActionFailJob, wantOK: true,
			wantMsg: "Pod ns/p has condition DisruptionTarget matching FailJob rule at index 1"},
		{name: "condition with another status",
			rules: []batchv1.PodFailurePolicyRule{rule(batchv1.PodFailurePolicyActionIgnore, nil, onDisruption)},
			pod:   failedWith(nil, nil, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionFalse})},
		{name: "first matching rule wins",
			rules: []batchv1.PodFailurePolicyRule{
				rule(batchv1.PodFailurePolicyActionFailIndex, exitCodes(in, "", 5)),
				rule(batchv1.PodFailurePolicyActionFailJob, exitCodes(in, "", 5))},
			pod: failedWith(map[string]int32{"main": 5}, nil), wantAction: batchv1.PodFailurePolicyActionFailIndex, wantOK: true},
		{name: "unknown action matches nothing",
			rules: []batchv1.PodFailurePolicyRule{
				rule("Retry", exitCodes(in, "", 5)),
				rule(batchv1.PodFailurePolicyActionCount, exitCodes(in, "", 5))},
			pod: failedWith(map[string]int32{"main": 5}, nil), wantAction: batchv1.PodFailurePolicyActionCount, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, msg, ok := matchFailurePolicy(&batchv1.PodFailurePolicy{Rules: tt.rules}, tt.pod)
			if a != tt.wantAction || msg != tt.wantMsg || ok != tt.wantOK {
				t.Errorf("matchFailurePolicy = %q, %q, %v; want %q, %q, %v", a, msg, ok, tt.wantAction, tt.wantMsg, tt.wantOK)
			}
		})
	}
}

// policyJob is a Job with a podFailurePolicy: exit code 42 fails the Job,
// 3 is ignored, 4 counts, 5 fails the index.
func policyJob(mutate func(*batchv1.Job)) *batchv1.Job {
	in := batchv1.PodFailurePolicyOnExitCodesOpIn
	return stormJob(func(j *batchv1.Job) {
		j.Spec.BackoffLimit = ptr.To[int32](1)
		j.Spec.PodReplacementPolicy = ptr.To(batchv1.Failed)
		j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
			{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: exitCodes(in, "", 42)},
			{Action: batchv1.PodFailurePolicyActionIgnore, OnExitCodes: exitCodes(in, "", 3)},
			{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: exitCodes(in, "", 4)},
			{Action: batchv1.PodFailurePolicyActionFailIndex, OnExitCodes: exitCodes(in, "", 5)},
		}}
		if mutate != nil {
			mutate(j)
		}
	})
}

func TestDecidePodFailurePolicy(t *testing.T) {
	t.Run("FailJob fails the Job at the first failure", func(t *testing.T) {
		s := newSim(t, policyJob(nil))
		s.step()
		p := s.active()[0]
		s.terminate(p, corev1.PodFailed, 42)
		s.step()
		c := findCondition(s.job.Status.Conditions, batchv1.JobFailed)
		if c == nil || c.Reason != batchv1.JobReasonPodFailurePolicy ||
			c.Message != "Container c for pod default/"+p.Name+" failed with exit code 42 matching FailJob rule at index 0" {
			t.Fatalf("conditions %+v, want Failed by PodFailurePolicy", s.job.Status.Conditions)
		}
		if findCondition(s.job.Status.Conditions, batchv1.JobFailureTarget) == nil || s.job.Status.Failed != 1 || len(s.created) != 1 {
			t.Errorf("status %+v, %d pods: want FailureTarget, failed 1, one pod", s.job.Status, len(s.created))
		}
	})
	t.Run("Ignore does not use up backoffLimit", func(t *testing.T) {
		s := newSim(t, policyJob(nil))
		s.step()
		for i := range 4 {
			s.terminate(s.active()[0], corev1.PodFailed, 3)
			d := s.step()
			s.now = s.now.Add(d.requeue)
			if d := s.step(); len(d.create) != 1 {
				t.Fatalf("ignored failure %d: created %v after the back-off, want a pod", i+1, d.create)
			}
		}
		if s.job.Status.Failed != 0 || finished(s.job) {
			t.Errorf("after 4 ignored failures with backoffLimit 1: failed %d, conditions %+v", s.job.Status.Failed, s.job.Status.Conditions)
		}
	})
	t.Run("Count counts", func(t *testing.T) {
		s := newSim(t, policyJob(nil))
		s.step()
		for range 2 {
			s.terminate(s.active()[0], corev1.PodFailed, 4)
			d := s.step()
			s.now = s.now.Add(d.requeue)
			s.step()
		}
		if c := findCondition(s.job.Status.Conditions, batchv1.JobFailed); c == nil || c.Reason != batchv1.JobReasonBackoffLimitExceeded || s.job.Status.Failed != 2 {
			t.Errorf("failed %d, conditions %+v; want 2 and Failed BackoffLimitExceeded", s.job.Status.Failed, s.job.Status.Conditions)
		}
	})
	t.Run("a terminating pod holds its place until it fails", func(t *testing.T) {
		s := newSim(t, policyJob(nil))
		s.step()
		p := s.active()[0]
		p.Status.Phase = corev1.PodRunning
		p.DeletionTimestamp = ptr.To(metav1.NewTime(s.now))
		if d := s.step(); len(d.create) != 0 || s.job.Status.Failed != 0 {
			t.Fatalf("pod being deleted: created %v, failed %d; want neither", d.create, s.job.Status.Failed)
		}
		s.terminate(p, corev1.PodFailed, 42)
		s.step()
		if c := findCondition(s.job.Status.Conditions, batchv1.JobFailureTarget); c == nil || c.Reason != batchv1.JobReasonPodFailurePolicy {
			t.Errorf("conditions %+v, want FailureTarget PodFailurePolicy", s.job.Status.Conditions)
		}
	})
}
