package disruption_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-io/skiff/internal/controller/disruption"
	"github.com/skiff-io/skiff/test/framework"
)

// TestBudgets: minAvailable 2 over three ready pods allows one disruption;
// maxUnavailable 1 over a ReplicaSet of 4 with 3 ready pods allows none
// (expectedPods follows the controller reference); a pod going not ready
// takes the first budget to zero; an expired disruptedPods entry is
// dropped. A ReplicationController's replicas count as a ReplicaSet's.
func TestBudgets(t *testing.T) {
	_, client, _ := framework.StartController(t, framework.Builder(disruption.New))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const ns = "default"
	for i := range 3 {
		createReadyPod(ctx, t, client, ns, fmt.Sprintf("web-%d", i), map[string]string{"app": "web"}, nil)
	}
	two := intstr.FromInt32(2)
	mkPDB(ctx, t, client, ns, "web", policyv1.PodDisruptionBudgetSpec{MinAvailable: &two, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}})
	waitStatus(ctx, t, client, ns, "web", "minAvailable 2 over 3 ready", func(s policyv1.PodDisruptionBudgetStatus) bool {
		cond := findCondition(s.Conditions)
		return s.DisruptionsAllowed == 1 && s.CurrentHealthy == 3 && s.DesiredHealthy == 2 && s.ExpectedPods == 3 &&
			s.ObservedGeneration > 0 && cond != nil && cond.Status == metav1.ConditionTrue && cond.Reason == policyv1.SufficientPodsReason
	})

	// Steady state: the status is not rewritten.
	first, err := client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(time.Second)
	for time.Now().Before(end) {
		got, err := client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil || got.ResourceVersion != first.ResourceVersion {
			t.Fatalf("budget rewritten in steady state (err %v)", err)
		}
		time.Sleep(100 * time.Millisecond) // sampling interval of a "stays quiet" check
	}

	// A ReplicaSet wanting 4 pods, of which 3 exist and are ready.
	replicas := int32(4)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: ns},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "api"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
			},
		},
	}
	rs, err = client.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		createReadyPod(ctx, t, client, ns, fmt.Sprintf("api-%d", i), map[string]string{"app": "api"},
			[]metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))})
	}
	one := intstr.FromInt32(1)
	mkPDB(ctx, t, client, ns, "api", policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}}})
	waitStatus(ctx, t, client, ns, "api", "maxUnavailable 1 of a 4-replica set with 3 pods", func(s policyv1.PodDisruptionBudgetStatus) bool {
		cond := findCondition(s.Conditions)
		return s.ExpectedPods == 4 && s.DesiredHealthy == 3 && s.CurrentHealthy == 3 && s.DisruptionsAllowed == 0 &&
			cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == policyv1.InsufficientPodsReason
	})

	// A ReplicationController wanting 3 pods, of which 2 exist and are
	// ready: expectedPods follows it too.
	three := int32(3)
	rc, err := client.CoreV1().ReplicationControllers(ns).Create(ctx, &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: ns},
		Spec: corev1.ReplicationControllerSpec{
			Replicas: &three,
			Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "legacy"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		createReadyPod(ctx, t, client, ns, fmt.Sprintf("legacy-%d", i), map[string]string{"app": "legacy"},
			[]metav1.OwnerReference{*metav1.NewControllerRef(rc, corev1.SchemeGroupVersion.WithKind("ReplicationController"))})
	}
	mkPDB(ctx, t, client, ns, "legacy", policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "legacy"}}})
	waitStatus(ctx, t, client, ns, "legacy", "maxUnavailable 1 of a 3-replica RC with 2 pods", func(s policyv1.PodDisruptionBudgetStatus) bool {
		return s.ExpectedPods == 3 && s.DesiredHealthy == 2 && s.CurrentHealthy == 2 && s.DisruptionsAllowed == 0
	})

	// A pod of web goes not ready.
	p, err := client.CoreV1().Pods(ns).Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
	if _, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitStatus(ctx, t, client, ns, "web", "web-1 not ready", func(s policyv1.PodDisruptionBudgetStatus) bool {
		return s.DisruptionsAllowed == 0 && s.CurrentHealthy == 2
	})

	// An eviction entry from three minutes ago is dropped.
	pdb, err := client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pdb.Status.DisruptedPods = map[string]metav1.Time{"web-0": metav1.NewTime(time.Now().Add(-3 * time.Minute))}
	if _, err := client.PolicyV1().PodDisruptionBudgets(ns).UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitStatus(ctx, t, client, ns, "web", "expired disruptedPods entry dropped", func(s policyv1.PodDisruptionBudgetStatus) bool {
		return len(s.DisruptedPods) == 0 && s.CurrentHealthy == 2
	})
}

func mkPDB(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name string, spec policyv1.PodDisruptionBudgetSpec) {
	t.Helper()
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: spec}
	if _, err := client.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func createReadyPod(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name string, labels map[string]string, owners []metav1.OwnerReference) {
	t.Helper()
	framework.CreateReadyPod(ctx, t, client, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, OwnerReferences: owners},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	})
}

func findCondition(conds []metav1.Condition) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == policyv1.DisruptionAllowedCondition {
			return &conds[i]
		}
	}
	return nil
}

func waitStatus(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name, what string, ok func(policyv1.PodDisruptionBudgetStatus) bool) {
	t.Helper()
	var last policyv1.PodDisruptionBudgetStatus
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		pdb, err := client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = pdb.Status
		return ok(pdb.Status), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (status %+v)", what, err, last)
	}
}
