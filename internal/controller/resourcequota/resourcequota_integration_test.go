package resourcequota_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-io/skiff/internal/controller/resourcequota"
	"github.com/skiff-io/skiff/test/framework"
)

// TestQuotaUsage: status.hard mirrors spec.hard and status.used counts
// pods, requests.cpu, configmaps and replicationcontrollers, following pod
// creation and a pod finishing.
func TestQuotaUsage(t *testing.T) {
	_, client, _ := framework.StartController(t, framework.Builder(resourcequota.New))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const ns = "quota"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	q := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "q", Namespace: ns},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
			corev1.ResourcePods:                   resource.MustParse("10"),
			corev1.ResourceRequestsCPU:            resource.MustParse("4"),
			corev1.ResourceConfigMaps:             resource.MustParse("10"),
			corev1.ResourceReplicationControllers: resource.MustParse("10"),
		}},
	}
	if _, err := client.CoreV1().ResourceQuotas(ns).Create(ctx, q, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUsed(ctx, t, client, ns, "empty namespace", map[corev1.ResourceName]string{"pods": "0", "requests.cpu": "0", "configmaps": "0", "replicationcontrollers": "0"})

	for i, cpu := range []string{"100m", "250m"} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: ns},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}},
		}
		if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rc := &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: ns},
		Spec: corev1.ReplicationControllerSpec{Template: &corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "rc"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}}},
	}
	if _, err := client.CoreV1().ReplicationControllers(ns).Create(ctx, rc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUsed(ctx, t, client, ns, "two pods, a configmap and an RC", map[corev1.ResourceName]string{"pods": "2", "requests.cpu": "350m", "configmaps": "1", "replicationcontrollers": "1"})

	p, err := client.CoreV1().Pods(ns).Get(ctx, "p1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodSucceeded
	if _, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUsed(ctx, t, client, ns, "finished pod released", map[corev1.ResourceName]string{"pods": "1", "requests.cpu": "100m", "configmaps": "1"})

	got, err := client.CoreV1().ResourceQuotas(ns).Get(ctx, "q", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Steady state: the status is not rewritten.
	end := time.Now().Add(time.Second)
	for time.Now().Before(end) {
		q, err := client.CoreV1().ResourceQuotas(ns).Get(ctx, "q", metav1.GetOptions{})
		if err != nil || q.ResourceVersion != got.ResourceVersion {
			t.Fatalf("quota rewritten in steady state (err %v)", err)
		}
		time.Sleep(100 * time.Millisecond) // sampling interval of a "stays quiet" check
	}
	if h := got.Status.Hard[corev1.ResourceRequestsCPU]; h.Cmp(resource.MustParse("4")) != 0 || len(got.Status.Hard) != 4 {
		t.Errorf("status.hard = %v, want spec.hard", got.Status.Hard)
	}
}

func waitUsed(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, what string, want map[corev1.ResourceName]string) {
	t.Helper()
	var last corev1.ResourceList
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		q, err := client.CoreV1().ResourceQuotas(ns).Get(ctx, "q", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = q.Status.Used
		for k, v := range want {
			got, ok := q.Status.Used[k]
			if !ok || got.Cmp(resource.MustParse(v)) != 0 {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (used %v)", what, err, last)
	}
}
