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

// An eviction marks the pod DisruptionTarget=True (EvictionByEvictionAPI)
// before it deletes it, as upstream, so that a Job's podFailurePolicy can
// ignore evictions; a resourceVersion precondition names the pod as it was
// before that mark. A pod update that replaces the tolerations keeps the
// default not-ready/unreachable ones (DefaultTolerationSeconds runs on
// update too), so adding a toleration is allowed.
func TestEvictionMarksDisruptionTarget(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "evd")
	p, err := cs.CoreV1().Pods("evd").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "a"},
		// On a node: a graceful delete keeps it, with its status, for the kubelet.
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Spec.Tolerations); n != 2 {
		t.Fatalf("new pod has %d tolerations, want the 2 defaults", n)
	}
	p.Spec.Tolerations = []corev1.Toleration{{Key: "foo", Operator: corev1.TolerationOpEqual, Value: "bar", Effect: corev1.TaintEffectNoSchedule}}
	if p, err = cs.CoreV1().Pods("evd").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("replacing the tolerations: %v", err)
	}
	if n := len(p.Spec.Tolerations); n != 3 || p.Generation != 2 {
		t.Fatalf("after the update: %d tolerations, generation %d; want 3 (the new one and the defaults), 2", n, p.Generation)
	}
	rv := p.ResourceVersion
	err = cs.PolicyV1().Evictions("evd").Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "evd"},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}}})
	if err != nil {
		t.Fatalf("evict with the current resourceVersion as precondition: %v", err)
	}
	p, err = cs.CoreV1().Pods("evd").Get(ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the evicted pod on a node should stay while it terminates: %v", err)
	}
	var cond *corev1.PodCondition
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.DisruptionTarget {
			cond = &p.Status.Conditions[i]
		}
	}
	if p.DeletionTimestamp == nil || cond == nil || cond.Status != corev1.ConditionTrue ||
		cond.Reason != "EvictionByEvictionAPI" || cond.Message != "Eviction API: evicting" {
		t.Fatalf("evicted pod: deletionTimestamp %v, DisruptionTarget condition %+v; want terminating with True/EvictionByEvictionAPI/\"Eviction API: evicting\"",
			p.DeletionTimestamp, cond)
	}
}
