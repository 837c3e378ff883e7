package integration

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/test/framework"
)

// TestNamespaceDeletesPodsFirst is upstream's conformance test
// "OrderedNamespaceDeletion namespace deletion should delete pod first"
// against the server's own namespace controller: a terminating namespace
// gets its deletion conditions, its pod (held by a finalizer) is deleted
// while its ConfigMap stays, and once the pod is gone the rest goes and
// the namespace with it.
func TestNamespaceDeletesPodsFirst(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers("namespace"), func(cfg *server.Config) { cfg.DisableScheduler = true })
	cs := c.Client
	ctx := context.Background()
	const ns = "nsdeletetest"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "test-pod", Finalizers: []string{"e2e.example.com/finalizer"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "pause"}}},
	}
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	framework.MarkReady(ctx, t, cs, pod)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "test-configmap"}, Data: map[string]string{"key": "value"}}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	var last *corev1.Namespace
	framework.Eventually(t, 20*time.Second, func() bool {
		n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("namespace: %v", err)
		}
		last = n
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NamespaceDeletionContentFailure {
				return n.Status.Phase == corev1.NamespaceTerminating
			}
		}
		return false
	})
	for _, typ := range []corev1.NamespaceConditionType{corev1.NamespaceDeletionDiscoveryFailure, corev1.NamespaceDeletionGVParsingFailure, corev1.NamespaceContentRemaining, corev1.NamespaceFinalizersRemaining} {
		found := false
		for _, c := range last.Status.Conditions {
			found = found || c.Type == typ
		}
		if !found {
			t.Errorf("condition %s missing: %+v", typ, last.Status.Conditions)
		}
	}

	// The pod is being deleted; the ConfigMap stays as long as it is there.
	framework.Eventually(t, 10*time.Second, func() bool {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && p.DeletionTimestamp != nil
	})
	for range 3 {
		if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, cm.Name, metav1.GetOptions{}); err != nil {
			t.Fatalf("configmap deleted while the pod remains: %v", err)
		}
		time.Sleep(time.Second) // the controller re-checks every second
	}

	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Finalizers = nil
		_, err = cs.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, func() bool {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}
