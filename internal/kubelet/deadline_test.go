package kubelet

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestDeadlineLeft(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		deadline *int64
		start    time.Time
		now      time.Time
		left     time.Duration
		ok       bool
	}{
		{name: "no deadline", start: start, now: start.Add(time.Hour)},
		{name: "no start time", deadline: ptr.To[int64](5), now: start},
		{name: "before", deadline: ptr.To[int64](5), start: start, now: start.Add(2 * time.Second), left: 3 * time.Second, ok: true},
		{name: "at", deadline: ptr.To[int64](5), start: start, now: start.Add(5 * time.Second), ok: true},
		{name: "lowered below the time run", deadline: ptr.To[int64](5), start: start, now: start.Add(time.Minute), left: -55 * time.Second, ok: true},
	} {
		pod := &corev1.Pod{Spec: corev1.PodSpec{ActiveDeadlineSeconds: tc.deadline}}
		left, ok := deadlineLeft(pod, tc.start, tc.now)
		if left != tc.left || ok != tc.ok {
			t.Errorf("%s: deadlineLeft = %v, %v; want %v, %v", tc.name, left, ok, tc.left, tc.ok)
		}
		past := pastDeadline(pod, &metav1.Time{Time: tc.start}, tc.now)
		if want := tc.ok && tc.left <= 0; past != want {
			t.Errorf("%s: pastDeadline = %v, want %v", tc.name, past, want)
		}
	}
	if pastDeadline(&corev1.Pod{Spec: corev1.PodSpec{ActiveDeadlineSeconds: ptr.To[int64](0)}}, nil, start) {
		t.Error("pastDeadline without a start time = true, want false")
	}
}
