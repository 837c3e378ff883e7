package job

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

func TestBackoffRemaining(t *testing.T) {
	tests := []struct {
		name     string
		failures int32
		elapsed  time.Duration
		base     time.Duration
		limit    time.Duration
		want     time.Duration
	}{
		{"no failure", 0, 0, 10 * time.Second, 10 * time.Minute, 0},
		{"first failure", 1, 0, 10 * time.Second, 10 * time.Minute, 10 * time.Second},
		{"first failure, 4s ago", 1, 4 * time.Second, 10 * time.Second, 10 * time.Minute, 6 * time.Second},
		{"second failure doubles", 2, 0, 10 * time.Second, 10 * time.Minute, 20 * time.Second},
		{"third failure", 3, 0, 10 * time.Second, 10 * time.Minute, 40 * time.Second},
		{"sixth failure", 6, 0, 10 * time.Second, 10 * time.Minute, 320 * time.Second},
		{"seventh failure capped at ten minutes", 7, 0, 10 * time.Second, 10 * time.Minute, 10 * time.Minute},
		{"other cap", 7, 0, 10 * time.Second, 6 * time.Minute, 6 * time.Minute},
		{"many failures stay capped", 1000, 0, 10 * time.Second, 10 * time.Minute, 10 * time.Minute},
		{"back-off over", 2, 21 * time.Second, 10 * time.Second, 10 * time.Minute, 0},
		{"exactly over", 1, 10 * time.Second, 10 * time.Second, 10 * time.Minute, 0},
		{"shortened", 3, 100 * time.Millisecond, 100 * time.Millisecond, time.Second, 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := backoffRemaining(tt.failures, t0, t0.Add(tt.elapsed), tt.base, tt.limit); got != tt.want {
				t.Errorf("backoffRemaining = %v, want %v", got, tt.want)
			}
		})
	}
}

// finishedPod returns a pod in phase that finished at (seconds after t0).
func finishedPod(name string, phase corev1.PodPhase, at int) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uid(name), CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))},
		Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{Name: "c",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: metav1.NewTime(t0.Add(time.Duration(at) * time.Second))}}}}},
	}
}

func TestBackoffRecordUpdate(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name              string
		old               backoffRecord
		succeeded, failed []*corev1.Pod
		want              backoffRecord
	}{
		{name: "nothing new", old: backoffRecord{2, at(5)}, want: backoffRecord{2, at(5)}},
		{name: "failures add up", old: backoffRecord{1, at(5)},
			failed: []*corev1.Pod{finishedPod("a", corev1.PodFailed, 9), finishedPod("b", corev1.PodFailed, 7)},
			want:   backoffRecord{3, at(9)}},
		{name: "a success resets", old: backoffRecord{4, at(5)},
			succeeded: []*corev1.Pod{finishedPod("s", corev1.PodSucceeded, 8)}, want: backoffRecord{}},
		{name: "only failures after the last success count", old: backoffRecord{4, at(1)},
			succeeded: []*corev1.Pod{finishedPod("s1", corev1.PodSucceeded, 3), finishedPod("s2", corev1.PodSucceeded, 6)},
			failed:    []*corev1.Pod{finishedPod("f1", corev1.PodFailed, 2), finishedPod("f2", corev1.PodFailed, 6), finishedPod("f3", corev1.PodFailed, 7), finishedPod("f4", corev1.PodFailed, 9)},
			want:      backoffRecord{2, at(9)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.old.update(tt.succeeded, tt.failed); got != tt.want {
				t.Errorf("update = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFinishTime(t *testing.T) {
	created := metav1.NewTime(t0)
	term := func(s int) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(t0.Add(time.Duration(s) * time.Second))}}
	}
	notReady := []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(t0.Add(20 * time.Second))}}
	deleted := metav1.NewTime(t0.Add(60 * time.Second))
	tests := []struct {
		name string
		pod  corev1.Pod
		want time.Duration // after t0
	}{
		{"latest container finish", corev1.Pod{Status: corev1.PodStatus{
			ContainerStatuses: []corev1.ContainerStatus{{State: term(5)}, {State: term(9)}}, Conditions: notReady}}, 9 * time.Second},
		{"a container still running: Ready=False time", corev1.Pod{Status: corev1.PodStatus{
			ContainerStatuses: []corev1.ContainerStatus{{State: term(5)}, {}}, Conditions: notReady}}, 20 * time.Second},
		{"sidecar finishes last", corev1.Pod{
			Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "side", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}, {Name: "init"}}},
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{State: term(5)}},
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "side", State: term(7)}, {Name: "init", State: term(1)}}}}, 7 * time.Second},
		{"deletion less grace", corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &deleted, DeletionGracePeriodSeconds: ptr.To[int64](30)}}, 30 * time.Second},
		{"creation as a last resort", corev1.Pod{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.pod.CreationTimestamp = created
			if got := finishTime(&tt.pod).Sub(t0); got != tt.want {
				t.Errorf("finishTime = t0+%v, want t0+%v", got, tt.want)
			}
		})
	}
}
