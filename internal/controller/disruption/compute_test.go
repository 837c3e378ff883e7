package disruption

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func pods(ready, notReady int, owner string) []*corev1.Pod {
	var out []*corev1.Pod
	for i := range ready + notReady {
		st := corev1.ConditionTrue
		if i >= ready {
			st = corev1.ConditionFalse
		}
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: "ns"},
			Status:     corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
		}
		if owner != "" {
			ctrl := true
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: owner, UID: types.UID(owner), Controller: &ctrl}}
		}
		out = append(out, p)
	}
	return out
}

// scaleOf resolves every controller to replicas.
func scaleOf(replicas int32) scaleFunc {
	return func(_ string, ref *metav1.OwnerReference) (types.UID, int32, bool) {
		if ref.Name == "unknown" {
			return "", 0, false
		}
		return ref.UID, replicas, true
	}
}

func TestComputeStatus(t *testing.T) {
	now := time.Unix(100000, 0)
	deleting := metav1.NewTime(now)
	minInt := func(v int) *policyv1.PodDisruptionBudget {
		x := intstr.FromInt32(int32(v))
		return &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Generation: 3}, Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &x}}
	}
	minStr := func(v string) *policyv1.PodDisruptionBudget {
		x := intstr.FromString(v)
		return &policyv1.PodDisruptionBudget{Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &x}}
	}
	maxU := func(v intstr.IntOrString) *policyv1.PodDisruptionBudget {
		return &policyv1.PodDisruptionBudget{Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &v}}
	}
	type nums struct{ Expected, Desired, Current, Allowed int32 }
	tests := []struct {
		name  string
		pdb   *policyv1.PodDisruptionBudget
		pods  []*corev1.Pod
		scale scaleFunc
		want  nums
	}{
		{"minAvailable 2 over 3 ready", minInt(2), pods(3, 0, ""), nil, nums{3, 2, 3, 1}},
		{"minAvailable 2 over 2 ready 1 not", minInt(2), pods(2, 1, ""), nil, nums{3, 2, 2, 0}},
		{"minAvailable above healthy", minInt(5), pods(3, 0, ""), nil, nums{3, 5, 3, 0}},
		{"minAvailable 50% of a 5-replica controller rounds up", minStr("50%"), pods(5, 0, "rs"), scaleOf(5), nums{5, 3, 5, 2}},
		{"minAvailable % uses controller scale, not pod count", minStr("100%"), pods(3, 0, "rs"), scaleOf(4), nums{4, 4, 3, 0}},
		{"maxUnavailable 1 over 3", maxU(intstr.FromInt32(1)), pods(3, 0, "rs"), scaleOf(3), nums{3, 2, 3, 1}},
		{"maxUnavailable 1 with one unready", maxU(intstr.FromInt32(1)), pods(2, 1, "rs"), scaleOf(3), nums{3, 2, 2, 0}},
		{"maxUnavailable 34% of 3 rounds up to 2", maxU(intstr.FromString("34%")), pods(3, 0, "rs"), scaleOf(3), nums{3, 1, 3, 2}},
		{"maxUnavailable larger than expected", maxU(intstr.FromInt32(10)), pods(3, 0, "rs"), scaleOf(3), nums{3, 0, 3, 3}},
		{"pods without controller count as themselves", maxU(intstr.FromInt32(1)), pods(3, 0, ""), scaleOf(9), nums{3, 2, 3, 1}},
		{"unresolvable controller counts pods", maxU(intstr.FromInt32(1)), pods(2, 0, "unknown"), scaleOf(9), nums{2, 1, 2, 1}},
		{"no pods", minInt(1), nil, nil, nums{0, 1, 0, 0}},
		{"no pods and maxUnavailable: nothing expected, nothing allowed", maxU(intstr.FromInt32(1)), nil, nil, nums{0, 0, 0, 0}},
		{"terminating pod is not healthy", minInt(1), func() []*corev1.Pod {
			p := pods(2, 0, "")
			p[0].DeletionTimestamp = &deleting
			return p
		}(), nil, nums{2, 1, 1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := computeStatus(tt.pdb, tt.pods, tt.scale, now)
			got := nums{st.ExpectedPods, st.DesiredHealthy, st.CurrentHealthy, st.DisruptionsAllowed}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if st.ObservedGeneration != tt.pdb.Generation {
				t.Errorf("observedGeneration = %d", st.ObservedGeneration)
			}
			if len(st.Conditions) != 1 || st.Conditions[0].Type != policyv1.DisruptionAllowedCondition {
				t.Fatalf("conditions = %v", st.Conditions)
			}
			c := st.Conditions[0]
			wantStatus, wantReason := metav1.ConditionTrue, policyv1.SufficientPodsReason
			if tt.want.Allowed == 0 {
				wantStatus, wantReason = metav1.ConditionFalse, policyv1.InsufficientPodsReason
			}
			if c.Status != wantStatus || c.Reason != wantReason {
				t.Errorf("condition = %s/%s, want %s/%s", c.Status, c.Reason, wantStatus, wantReason)
			}
		})
	}
	if st, _ := computeStatus(nil, nil, nil, now); st.ExpectedPods != 0 {
		t.Error("nil pdb")
	}
}

func TestDisruptedPods(t *testing.T) {
	now := time.Unix(100000, 0)
	two := intstr.FromInt32(2)
	pdb := &policyv1.PodDisruptionBudget{Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &two}}
	pdb.Status.DisruptedPods = map[string]metav1.Time{
		"p0":   metav1.NewTime(now.Add(-30 * time.Second)), // recent: kept, p0 not healthy
		"p1":   metav1.NewTime(now.Add(-3 * time.Minute)),  // expired: dropped
		"gone": metav1.NewTime(now.Add(-time.Second)),      // pod no longer exists: dropped
	}
	ps := pods(4, 0, "")
	st, recheck := computeStatus(pdb, ps, nil, now)
	if diff := cmp.Diff([]string{"p0"}, keys(st.DisruptedPods)); diff != "" {
		t.Errorf("disruptedPods (-want +got):\n%s", diff)
	}
	if st.CurrentHealthy != 3 || st.DisruptionsAllowed != 1 {
		t.Errorf("healthy %d allowed %d, want 3 and 1", st.CurrentHealthy, st.DisruptionsAllowed)
	}
	if recheck != 90*time.Second {
		t.Errorf("recheck = %v, want 90s", recheck)
	}

	// Once the evicted pod terminates, its entry goes.
	deleting := metav1.NewTime(now)
	ps[0].DeletionTimestamp = &deleting
	st, recheck = computeStatus(pdb, ps, nil, now)
	if len(st.DisruptedPods) != 0 || recheck != 0 {
		t.Errorf("disruptedPods = %v, recheck %v; want none", st.DisruptedPods, recheck)
	}
}

func TestConditionTransitionTime(t *testing.T) {
	t0 := time.Unix(1000, 0)
	one := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &one}}
	st, _ := computeStatus(pdb, pods(3, 0, ""), nil, t0)
	pdb.Status = st
	st2, _ := computeStatus(pdb, pods(2, 0, ""), nil, t0.Add(time.Minute))
	if !st2.Conditions[0].LastTransitionTime.Time.Equal(t0) {
		t.Errorf("transition time moved without a status change: %v", st2.Conditions[0].LastTransitionTime)
	}
	pdb.Status = st2
	st3, _ := computeStatus(pdb, pods(1, 0, ""), nil, t0.Add(2*time.Minute))
	if !st3.Conditions[0].LastTransitionTime.Time.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("transition time not updated on change: %v", st3.Conditions[0].LastTransitionTime)
	}
}

func keys(m map[string]metav1.Time) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestExpectedFromControllers(t *testing.T) {
	ps := append(pods(2, 0, "a"), pods(1, 0, "b")...)
	ps = append(ps, pods(1, 0, "")...)
	ps = append(ps, nil)
	// a and b scale to 5 each, the orphan counts 1.
	if got := expectedFromControllers(ps, scaleOf(5)); got != 11 {
		t.Errorf("expected = %d, want 11", got)
	}
}
