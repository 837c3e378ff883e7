package replicaset

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDiff(t *testing.T) {
	for _, tc := range []struct {
		name              string
		active            int
		want              int32
		burst             int
		wantCreate, wantD int
	}{
		{"equal", 3, 3, 500, 0, 0},
		{"scale up", 0, 5, 500, 5, 0},
		{"scale down", 5, 2, 500, 0, 3},
		{"to zero", 4, 0, 500, 0, 4},
		{"negative want", 2, -1, 500, 0, 2},
		{"burst caps create", 0, 1000, 500, 500, 0},
		{"burst caps delete", 1000, 0, 500, 0, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, d := diff(tc.active, tc.want, tc.burst)
			if c != tc.wantCreate || d != tc.wantD {
				t.Errorf("diff(%d, %d) = %d, %d; want %d, %d", tc.active, tc.want, c, d, tc.wantCreate, tc.wantD)
			}
		})
	}
}

func TestSlowStartBatches(t *testing.T) {
	for n, want := range map[int][]int{
		0:  nil,
		1:  {1},
		2:  {1, 1},
		3:  {1, 2},
		10: {1, 2, 4, 3},
		15: {1, 2, 4, 8},
		16: {1, 2, 4, 8, 1},
	} {
		if diff := cmp.Diff(want, slowStartBatches(n)); diff != "" {
			t.Errorf("slowStartBatches(%d) (-want +got):\n%s", n, diff)
		}
	}
}

func pod(name string, mut ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "a"}}}
	for _, m := range mut {
		m(p)
	}
	return p
}

func ready(since time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.NodeName = "n1"
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(since)}}
	}
}

func running(p *corev1.Pod) { p.Spec.NodeName = "n1"; p.Status.Phase = corev1.PodRunning }

func TestPodsToDelete(t *testing.T) {
	now := time.Now()
	pods := []*corev1.Pod{
		pod("ready-old", ready(now.Add(-time.Hour))),
		pod("unscheduled"),
		pod("running-not-ready", running),
		pod("ready-new", ready(now.Add(-time.Minute))),
	}
	names := func(ps []*corev1.Pod) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	for n, want := range map[int][]string{
		0: nil,
		1: {"unscheduled"},
		2: {"unscheduled", "running-not-ready"},
		3: {"unscheduled", "running-not-ready", "ready-new"},
		9: {"unscheduled", "running-not-ready", "ready-new", "ready-old"},
	} {
		if diff := cmp.Diff(want, names(podsToDelete(pods, n))); diff != "" {
			t.Errorf("podsToDelete(%d) (-want +got):\n%s", n, diff)
		}
	}
	if pods[0].Name != "ready-old" {
		t.Errorf("podsToDelete reordered its input")
	}
}

func TestCalculateStatus(t *testing.T) {
	now := time.Now()
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Generation: 3},
		Spec: appsv1.ReplicaSetSpec{
			MinReadySeconds: 10,
			Template:        corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a", "tier": "web"}}},
		},
	}
	full := func(p *corev1.Pod) { p.Labels["tier"] = "web" }
	pods := []*corev1.Pod{
		pod("a", full, ready(now.Add(-time.Minute))),   // available
		pod("b", full, ready(now.Add(-4*time.Second))), // ready, available in 6s
		pod("c", running), // not ready, not fully labeled
	}
	st, wait := calculateStatus(rs, pods, nil, false, now)
	want := appsv1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 1, ObservedGeneration: 3}
	if d := cmp.Diff(want, st); d != "" {
		t.Errorf("status (-want +got):\n%s", d)
	}
	if wait <= 5*time.Second || wait > 6*time.Second {
		t.Errorf("wait = %v, want about 6s", wait)
	}

	// A create error sets ReplicaFailure; success clears it.
	st, _ = calculateStatus(rs, nil, errors.New("exceeded quota"), true, now)
	if len(st.Conditions) != 1 || st.Conditions[0].Type != appsv1.ReplicaSetReplicaFailure ||
		st.Conditions[0].Reason != "FailedCreate" || st.Conditions[0].Message != "exceeded quota" {
		t.Fatalf("conditions after create error = %+v", st.Conditions)
	}
	rs.Status = st
	st, _ = calculateStatus(rs, nil, nil, false, now)
	if st.Conditions != nil {
		t.Errorf("conditions after success = %+v, want none", st.Conditions)
	}
	if rs.Status.Conditions == nil {
		t.Errorf("calculateStatus modified its input")
	}
}
