package namespace

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestConditions(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	status := func(conds []corev1.NamespaceCondition, typ corev1.NamespaceConditionType) *corev1.NamespaceCondition {
		for i := range conds {
			if conds[i].Type == typ {
				return &conds[i]
			}
		}
		return nil
	}

	// Pods remain: every owned condition is there, none True, and the
	// remaining content is not reported (upstream reports it only once
	// past the pods).
	podsLeft := &report{remaining: map[schema.GroupVersionResource]int{podsGVR: 1}, finalizers: map[string]int{"e2e.example.com/finalizer": 1}}
	other := corev1.NamespaceCondition{Type: "Other", Status: corev1.ConditionTrue}
	got, changed := conditions([]corev1.NamespaceCondition{other}, podsLeft, t0)
	if !changed || len(got) != 6 || got[0].Type != "Other" {
		t.Fatalf("first pass: changed=%v conditions=%+v", changed, got)
	}
	for _, typ := range conditionTypes {
		if c := status(got, typ); c == nil || c.Status != corev1.ConditionFalse || c.Reason != okConditions[typ][0] {
			t.Errorf("%s = %+v, want False %s", typ, c, okConditions[typ][0])
		}
	}
	if _, changed := conditions(got, podsLeft, t1); changed {
		t.Error("same report changed the conditions")
	}

	// Past the pods, a ConfigMap with a finalizer remains and a delete failed.
	r := &report{
		countRemaining: true,
		deleteErrs:     []error{errors.New("deleting widgets.example.com: boom")},
		remaining:      map[schema.GroupVersionResource]int{{Version: "v1", Resource: "configmaps"}: 2},
		finalizers:     map[string]int{"example.com/keep": 2},
	}
	got, changed = conditions(got, r, t1)
	if !changed {
		t.Fatal("failures did not change the conditions")
	}
	for typ, want := range map[corev1.NamespaceConditionType]string{
		corev1.NamespaceDeletionContentFailure: "Failed to delete all resource types, 1 remaining: deleting widgets.example.com: boom",
		corev1.NamespaceContentRemaining:       "Some resources are remaining: configmaps. has 2 resource instances",
		corev1.NamespaceFinalizersRemaining:    "Some content in the namespace has finalizers remaining: example.com/keep in 2 resource instances",
	} {
		c := status(got, typ)
		if c == nil || c.Status != corev1.ConditionTrue || c.Message != want || !c.LastTransitionTime.Equal(&t1) {
			t.Errorf("%s = %+v, want True %q at %v", typ, c, want, t1)
		}
	}
	if c := status(got, corev1.NamespaceDeletionDiscoveryFailure); c.Status != corev1.ConditionFalse || !c.LastTransitionTime.Equal(&t0) {
		t.Errorf("discovery condition %+v, want False since %v", c, t0)
	}
}
