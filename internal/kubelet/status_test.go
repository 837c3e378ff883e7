package kubelet_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// The kubelet reports the generation of the pod spec it acted on in
// status.observedGeneration and in the observedGeneration of the
// conditions it owns, as upstream's kubelet; a spec update of a running
// pod that changes nothing else still leads to a status write, and a run
// of updates converges on the last generation.
func TestKubeletReportsObservedGeneration(t *testing.T) {
	h := start(t)
	h.createPod("gen", corev1.RestartPolicyAlways)
	owned := []corev1.PodConditionType{
		corev1.PodScheduled, corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady,
	}
	observed := func(gen int64) func(*corev1.Pod) bool {
		return func(p *corev1.Pod) bool {
			if p.Generation != gen || p.Status.ObservedGeneration != gen {
				return false
			}
			for _, typ := range owned {
				found := false
				for _, c := range p.Status.Conditions {
					found = found || (c.Type == typ && c.ObservedGeneration == gen)
				}
				if !found {
					return false
				}
			}
			return true
		}
	}
	h.waitStatus("gen", "Running with generation 1 observed", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && observed(1)(p)
	})

	update := func(f func(*corev1.Pod)) {
		t.Helper()
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			p, err := h.c.Client.CoreV1().Pods("default").Get(h.ctx, "gen", metav1.GetOptions{})
			if err != nil {
				return err
			}
			f(p)
			_, err = h.c.Client.CoreV1().Pods("default").Update(h.ctx, p, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Nothing but the spec changes: the status write is the kubelet's
	// report of what it saw.
	update(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](5000) })
	h.waitStatus("gen", "generation 2 observed", observed(2))

	for range 50 {
		update(func(p *corev1.Pod) { *p.Spec.ActiveDeadlineSeconds-- })
	}
	p := h.waitStatus("gen", "generation 52 observed", observed(52))
	if p.Status.Phase != corev1.PodRunning {
		t.Errorf("phase %s after spec updates, want Running", p.Status.Phase)
	}
}
