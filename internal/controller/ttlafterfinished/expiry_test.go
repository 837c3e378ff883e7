package ttlafterfinished

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestExpiry(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cond := func(typ batchv1.JobConditionType, st corev1.ConditionStatus, at time.Time) batchv1.JobCondition {
		return batchv1.JobCondition{Type: typ, Status: st, LastTransitionTime: metav1.NewTime(at)}
	}
	tests := []struct {
		name   string
		ttl    *int32
		status batchv1.JobStatus
		want   time.Time
		wantOK bool
	}{
		{name: "no ttl", status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{cond(batchv1.JobComplete, corev1.ConditionTrue, t0)}}},
		{name: "not finished", ttl: ptr.To[int32](10), status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{cond(batchv1.JobSuspended, corev1.ConditionTrue, t0)}}},
		{name: "complete false", ttl: ptr.To[int32](10), status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{cond(batchv1.JobComplete, corev1.ConditionFalse, t0)}}},
		{name: "completion time wins", ttl: ptr.To[int32](10), want: t0.Add(15 * time.Second), wantOK: true,
			status: batchv1.JobStatus{CompletionTime: ptr.To(metav1.NewTime(t0.Add(5 * time.Second))), Conditions: []batchv1.JobCondition{cond(batchv1.JobComplete, corev1.ConditionTrue, t0)}}},
		{name: "failed uses condition time", ttl: ptr.To[int32](0), want: t0, wantOK: true,
			status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{cond(batchv1.JobFailureTarget, corev1.ConditionTrue, t0.Add(-time.Hour)), cond(batchv1.JobFailed, corev1.ConditionTrue, t0)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &batchv1.Job{Spec: batchv1.JobSpec{TTLSecondsAfterFinished: tt.ttl}, Status: tt.status}
			got, ok := expiry(j)
			if ok != tt.wantOK || !got.Equal(tt.want) {
				t.Errorf("expiry = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
	if _, ok := expiry(nil); ok {
		t.Error("nil job expires")
	}
}
