package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/test/framework"
)

// TestGarbageCollectorDependencyCircle is upstream's conformance test
// "Garbage collector should not be blocked by dependency circle": three
// pods own each other in a circle (pod1 by pod3, pod2 by pod1, pod3 by
// pod2, every reference a blocking controller reference); deleting pod1
// must end with all three gone. In the foreground, each pod waits for
// the next unless the collector breaks the circle.
func TestGarbageCollectorDependencyCircle(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers("garbagecollector"), func(cfg *server.Config) { cfg.DisableScheduler = true })
	cs := c.Client
	ctx := context.Background()
	for ns, policy := range map[string]metav1.DeletionPropagation{
		"gc-circle-fg": metav1.DeletePropagationForeground,
		"gc-circle-bg": metav1.DeletePropagationBackground,
	} {
		t.Run(string(policy), func(t *testing.T) {
			if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			pods := cs.CoreV1().Pods(ns)
			var created [3]*corev1.Pod
			for i := range created {
				p := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod%d", i+1)},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx"}}},
				}
				var err error
				if created[i], err = pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			refPatch := func(owner *corev1.Pod) []byte {
				return fmt.Appendf(nil, `{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"Pod","name":%q,"uid":%q,"controller":true,"blockOwnerDeletion":true}]}}`, owner.Name, owner.UID)
			}
			// pod1 owned by pod3, pod2 by pod1, pod3 by pod2.
			for i, owner := range []int{2, 0, 1} {
				if _, err := pods.Patch(ctx, created[i].Name, types.StrategicMergePatchType, refPatch(created[owner]), metav1.PatchOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			opts := metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: metav1.NewUIDPreconditions(string(created[0].UID))}
			if err := pods.Delete(ctx, "pod1", opts); err != nil {
				t.Fatal(err)
			}
			var left []string
			defer func() {
				if t.Failed() {
					t.Logf("pods left: %v", left)
				}
			}()
			framework.Eventually(t, 30*time.Second, func() bool {
				list, err := pods.List(ctx, metav1.ListOptions{})
				if err != nil {
					return false
				}
				left = left[:0]
				for _, p := range list.Items {
					left = append(left, fmt.Sprintf("%s finalizers=%v owners=%v", p.Name, p.Finalizers, p.OwnerReferences))
				}
				return len(list.Items) == 0
			})
		})
	}
}
