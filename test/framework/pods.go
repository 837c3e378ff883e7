package framework

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// SetRunningReady plays the kubelet for pod: it writes phase Running and a
// Ready=True condition (replacing any Ready condition) through
// pods/status and returns the updated pod. pod itself is not changed.
func SetRunningReady(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) (*corev1.Pod, error) {
	if pod == nil {
		return nil, fmt.Errorf("mark ready: nil pod")
	}
	p := pod.DeepCopy()
	p.Status.Phase = corev1.PodRunning
	ready := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}
	conds := []corev1.PodCondition{ready}
	for _, c := range p.Status.Conditions {
		if c.Type != corev1.PodReady {
			conds = append(conds, c)
		}
	}
	p.Status.Conditions = conds
	out, err := client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("mark %s/%s ready: %w", p.Namespace, p.Name, err)
	}
	return out, nil
}

// MarkReady is SetRunningReady failing the test on error.
func MarkReady(ctx context.Context, t testing.TB, client kubernetes.Interface, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	p, err := SetRunningReady(ctx, client, pod)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// CreateReadyPod creates pod (in its namespace) and marks it Running and
// Ready. The addresses set in pod.Status (PodIP, PodIPs, HostIP) are
// written with it. It fails the test on error and returns the pod as
// stored.
func CreateReadyPod(ctx context.Context, t testing.TB, client kubernetes.Interface, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	if pod == nil {
		t.Fatal("create ready pod: nil pod")
	}
	created, err := client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	if s := pod.Status; s.PodIP != "" || len(s.PodIPs) > 0 || s.HostIP != "" {
		created.Status.PodIP, created.Status.PodIPs, created.Status.HostIP = s.PodIP, s.PodIPs, s.HostIP
	}
	return MarkReady(ctx, t, client, created)
}
