package integration

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-io/skiff/test/framework"
)

// Priority admission resolves priorityClassName from PriorityClass objects,
// applies the global default, and rejects unknown classes and a
// contradicting integer priority as upstream.
func TestPriorityAdmission(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "prio")
	never := corev1.PreemptNever
	for _, pc := range []*schedulingv1.PriorityClass{
		{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000, PreemptionPolicy: &never},
		{ObjectMeta: metav1.ObjectMeta{Name: "base"}, Value: 7, GlobalDefault: true},
	} {
		if _, err := cs.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pod := func(name, class string, prio *int32) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, GenerateName: "probe-"},
			Spec: corev1.PodSpec{PriorityClassName: class, Priority: prio, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	}
	tests := []struct {
		name, class   string
		prio          *int32
		wantPrio      int32
		wantClass     string
		wantPreempt   corev1.PreemptionPolicy
		wantForbidden string
	}{
		{name: "named", class: "high", wantPrio: 1000, wantClass: "high", wantPreempt: corev1.PreemptNever},
		{name: "default", wantPrio: 7, wantClass: "base", wantPreempt: corev1.PreemptLowerPriority},
		{name: "system", class: "system-node-critical", wantPrio: 2000001000, wantClass: "system-node-critical", wantPreempt: corev1.PreemptLowerPriority},
		{name: "unknown", class: "nope", wantForbidden: "no PriorityClass with name nope was found"},
		{name: "contradicting", class: "high", prio: ptrInt32(5), wantForbidden: "the integer value of priority (5) must not be provided in pod spec"},
	}
	// The global default is read from the watch cache, as upstream reads
	// it from an informer: wait until the cache has it.
	framework.Eventually(t, 5*time.Second, func() bool {
		got, err := cs.CoreV1().Pods("prio").Create(ctx, pod("", "", nil), metav1.CreateOptions{})
		return err == nil && got.Spec.PriorityClassName == "base"
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cs.CoreV1().Pods("prio").Create(ctx, pod(tt.name, tt.class, tt.prio), metav1.CreateOptions{})
			if tt.wantForbidden != "" {
				if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tt.wantForbidden) {
					t.Fatalf("want 403 %q, got %v", tt.wantForbidden, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Spec.Priority == nil || *got.Spec.Priority != tt.wantPrio || got.Spec.PriorityClassName != tt.wantClass ||
				got.Spec.PreemptionPolicy == nil || *got.Spec.PreemptionPolicy != tt.wantPreempt {
				t.Fatalf("priority %v class %q preemption %v", got.Spec.Priority, got.Spec.PriorityClassName, got.Spec.PreemptionPolicy)
			}
		})
	}
}

func ptrInt32(v int32) *int32 { return &v }
