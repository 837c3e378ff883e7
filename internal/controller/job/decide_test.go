package job

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestNonIndexedDiff(t *testing.T) {
	tests := []struct {
		name                               string
		parallelism                        int32
		completions                        *int32
		active, reserved, succeeded, wantD int32
	}{
		{"fresh job", 2, ptr.To[int32](3), 0, 0, 0, 2},
		{"one left to run", 2, ptr.To[int32](3), 1, 0, 2, 0},
		{"last completion with one active", 2, ptr.To[int32](3), 2, 0, 2, -1},
		{"all done", 2, ptr.To[int32](3), 0, 0, 3, 0},
		{"over-succeeded", 2, ptr.To[int32](3), 0, 0, 5, 0},
		{"parallelism lowered", 1, ptr.To[int32](10), 3, 0, 0, -2},
		{"work queue fresh", 3, nil, 0, 0, 0, 3},
		{"work queue one done: no new pods, no deletes", 3, nil, 2, 0, 1, 0},
		{"zero parallelism", 0, ptr.To[int32](3), 2, 0, 0, -2},
		{"terminating pods hold their place (podReplacementPolicy Failed)", 3, ptr.To[int32](5), 1, 1, 0, 1},
		{"terminating pods fill parallelism", 2, ptr.To[int32](5), 0, 2, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nonIndexedDiff(tt.parallelism, tt.completions, tt.active, tt.reserved, tt.succeeded); got != tt.wantD {
				t.Errorf("nonIndexedDiff = %d, want %d", got, tt.wantD)
			}
		})
	}
}

func pod(name string, created int) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Unix(int64(created), 0))}}
}

func TestIndexedPlan(t *testing.T) {
	tests := []struct {
		name                     string
		completions, parallelism int32
		succeeded, skip          map[int]bool
		reserved                 int32
		active                   map[int][]*corev1.Pod
		wantCreate               []int
		wantRemove               []string
	}{
		{name: "fresh", completions: 5, parallelism: 2, wantCreate: []int{0, 1}},
		{name: "skip succeeded and running", completions: 5, parallelism: 3,
			succeeded: map[int]bool{0: true}, active: map[int][]*corev1.Pod{1: {pod("p1", 1)}}, wantCreate: []int{2, 3}},
		{name: "duplicate index keeps oldest", completions: 3, parallelism: 3,
			active: map[int][]*corev1.Pod{0: {pod("new", 5), pod("old", 1)}}, wantCreate: []int{1, 2}, wantRemove: []string{"new"}},
		{name: "pod for succeeded or bad index removed", completions: 3, parallelism: 1,
			succeeded: map[int]bool{0: true}, active: map[int][]*corev1.Pod{0: {pod("done", 1)}, -1: {pod("bad", 1)}, 7: {pod("out", 1)}},
			wantCreate: []int{1}, wantRemove: []string{"bad", "done", "out"}},
		{name: "over parallelism drops highest", completions: 5, parallelism: 1,
			active: map[int][]*corev1.Pod{0: {pod("a", 1)}, 3: {pod("b", 1)}}, wantRemove: []string{"b"}},
		{name: "all succeeded", completions: 2, parallelism: 2, succeeded: map[int]bool{0: true, 1: true}},
		{name: "failed index gets no pod", completions: 4, parallelism: 2, skip: map[int]bool{0: true, 2: true}, wantCreate: []int{1, 3}},
		{name: "reserved pods take parallelism", completions: 4, parallelism: 2, reserved: 1, skip: map[int]bool{0: true}, wantCreate: []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			create, remove := indexedPlan(tt.completions, tt.parallelism, tt.succeeded, tt.skip, tt.reserved, tt.active)
			var names []string
			for _, p := range remove {
				names = append(names, p.Name)
			}
			if diff := cmp.Diff(tt.wantCreate, create); diff != "" {
				t.Errorf("create (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRemove, names); diff != "" {
				t.Errorf("remove (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBackoffExceeded(t *testing.T) {
	tests := []struct {
		name             string
		failed, restarts int32
		onFailure        bool
		limit            *int32
		want             bool
	}{
		{"below limit", 1, 0, false, ptr.To[int32](1), false},
		{"over limit", 2, 0, false, ptr.To[int32](1), true},
		{"zero limit first failure", 1, 0, false, ptr.To[int32](0), true},
		{"restarts ignored for Never", 0, 9, false, ptr.To[int32](1), false},
		{"restarts count for OnFailure", 0, 2, true, ptr.To[int32](1), true},
		{"OnFailure restarts below limit", 0, 1, true, ptr.To[int32](2), false},
		{"OnFailure restarts reach limit", 0, 2, true, ptr.To[int32](2), true},
		{"OnFailure zero limit any restart", 0, 1, true, ptr.To[int32](0), true},
		{"OnFailure zero limit no restart", 0, 0, true, ptr.To[int32](0), false},
		{"default limit 6", 6, 0, false, nil, false},
		{"default limit 6 exceeded", 7, 0, false, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := backoffExceeded(tt.failed, tt.restarts, tt.onFailure, tt.limit); got != tt.want {
				t.Errorf("backoffExceeded = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDeadlineAndCompletion(t *testing.T) {
	start := metav1.NewTime(time.Unix(1000, 0))
	if _, ok := deadlineLeft(nil, ptr.To[int64](5), time.Unix(2000, 0)); ok {
		t.Error("deadline without start time")
	}
	if left, ok := deadlineLeft(&start, ptr.To[int64](5), time.Unix(1003, 0)); !ok || left != 2*time.Second {
		t.Errorf("deadlineLeft = %v, %v; want 2s, true", left, ok)
	}
	if left, _ := deadlineLeft(&start, ptr.To[int64](5), time.Unix(1006, 0)); left > 0 {
		t.Errorf("deadline passed but %v left", left)
	}
	for _, tt := range []struct {
		completions       *int32
		succeeded, active int32
		want              bool
	}{
		{ptr.To[int32](3), 2, 1, false},
		{ptr.To[int32](3), 3, 1, true},
		{nil, 1, 1, false},
		{nil, 1, 0, true},
		{nil, 0, 0, false},
	} {
		if got := completionsReached(tt.completions, tt.succeeded, tt.active); got != tt.want {
			t.Errorf("completionsReached(%v, %d, %d) = %v, want %v", tt.completions, tt.succeeded, tt.active, got, tt.want)
		}
	}
}

func TestIndexesRoundTrip(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"0", "0"},
		{"0-2,4", "0-2,4"},
		{"3,1,2,7-8", "1-3,7,8"},
		{"0-1", "0,1"},
		{"x,2-1,5", "5"},
		{"8-12", "8,9"}, // limit 10
	}
	for _, tt := range tests {
		if got := formatIndexes(parseIndexes(tt.in, 10)); got != tt.want {
			t.Errorf("round trip %q = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCountPods(t *testing.T) {
	now := metav1.Now()
	ready := corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{RestartCount: 2}}}
	pods := []*corev1.Pod{
		{Status: ready},
		{Status: corev1.PodStatus{Phase: corev1.PodPending}},
		{Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{RestartCount: 5}}}},
		{Status: corev1.PodStatus{Phase: corev1.PodFailed}},
		{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: corev1.PodStatus{Phase: corev1.PodRunning}},
		nil,
	}
	got := countPods(pods)
	want := podCounts{active: 2, ready: 1, succeeded: 1, failed: 1, terminating: 1, restarts: 2}
	if got != want {
		t.Errorf("countPods = %+v, want %+v", got, want)
	}
}

func TestNewPodIndexed(t *testing.T) {
	j := testJob()
	p := newPod(j, 2, true)
	if p.GenerateName != "pi-2-" || p.Spec.Hostname != "pi-2" {
		t.Errorf("generateName %q hostname %q", p.GenerateName, p.Spec.Hostname)
	}
	if p.Annotations["batch.kubernetes.io/job-completion-index"] != "2" || p.Labels["batch.kubernetes.io/job-completion-index"] != "2" {
		t.Errorf("index annotation/label missing: %v %v", p.Annotations, p.Labels)
	}
	if !hasEnv(p.Spec.Containers[0].Env, completionIndexEnv) {
		t.Errorf("no %s env", completionIndexEnv)
	}
	if j.Spec.Template.Annotations != nil || len(j.Spec.Template.Spec.Containers[0].Env) != 0 {
		t.Error("template was modified")
	}
	if p := newPod(j, -1, false); p.GenerateName != "pi-" || p.Spec.Hostname != "" {
		t.Errorf("non-indexed pod: %q %q", p.GenerateName, p.Spec.Hostname)
	}
}

func testJob() *batchv1.Job {
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "default", UID: "u1"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "pi"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}}}
}
