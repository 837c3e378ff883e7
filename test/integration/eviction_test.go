package integration

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-io/skiff/test/framework"
)

// The eviction subresource honours a PodDisruptionBudget: 429 while the
// budget allows no disruption, and one disruption spent per eviction. No
// disruption controller runs, so the test sets the budget's status itself.
func TestEvictionHonoursBudget(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "ev")
	for _, name := range []string{"a", "b"} {
		p, err := cs.CoreV1().Pods("ev").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		if _, err := cs.CoreV1().Pods("ev").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	evict := func(name string) error {
		return cs.PolicyV1().Evictions("ev").Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ev"}})
	}
	// No budget: the eviction deletes the pod.
	if err := evict("a"); err != nil {
		t.Fatalf("evict without a budget: %v", err)
	}
	if p, err := cs.CoreV1().Pods("ev").Get(ctx, "a", metav1.GetOptions{}); err == nil && p.DeletionTimestamp == nil {
		t.Fatal("evicted pod a is neither gone nor terminating")
	}

	pdb, err := cs.PolicyV1().PodDisruptionBudgets("ev").Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &intstr.IntOrString{IntVal: 1},
			Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The budget's status is not yet observed: 429.
	if err := evict("b"); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("evict under an unprocessed budget: want 429, got %v", err)
	}
	pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, CurrentHealthy: 1, DesiredHealthy: 1, ExpectedPods: 1}
	if pdb, err = cs.PolicyV1().PodDisruptionBudgets("ev").UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = evict("b")
	if !apierrors.IsTooManyRequests(err) {
		t.Fatalf("evict with no disruption allowed: want 429, got %v", err)
	}
	st := err.(apierrors.APIStatus).Status()
	if st.Message != "Cannot evict pod as it would violate the pod's disruption budget." || st.Details == nil || len(st.Details.Causes) != 1 ||
		st.Details.Causes[0].Message != "The disruption budget web needs 1 healthy pods and has 1 currently" {
		t.Fatalf("429 status: %+v", st)
	}
	pdb.Status.CurrentHealthy, pdb.Status.DesiredHealthy, pdb.Status.DisruptionsAllowed = 2, 1, 1
	if _, err = cs.PolicyV1().PodDisruptionBudgets("ev").UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := evict("b"); err != nil {
		t.Fatalf("evict with one disruption allowed: %v", err)
	}
	got, err := cs.PolicyV1().PodDisruptionBudgets("ev").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Status.DisruptedPods["b"]; got.Status.DisruptionsAllowed != 0 || !ok {
		t.Fatalf("budget after eviction: allowed %d, disrupted %v", got.Status.DisruptionsAllowed, got.Status.DisruptedPods)
	}
}
