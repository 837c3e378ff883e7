package integration

import (
	"context"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/test/framework"
)

// TestDeploymentProportionalScaling is upstream's conformance test
// "deployment should support proportional scaling" against the server's
// own Deployment and ReplicaSet controllers, the test playing the kubelet:
// pods of the good image become Running and Ready, pods of the broken
// one stay Pending. A Deployment of 10 (maxSurge 3, maxUnavailable 2) is
// rolled to a broken image, which stops at 8 old and 5 new replicas;
// scaled to 30 mid-rollout, the ReplicaSets must go to exactly 20 and 13.
func TestDeploymentProportionalScaling(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers("deployment", "replicaset"), func(cfg *server.Config) { cfg.DisableScheduler = true })
	cs := c.Client
	ctx, cancel := context.WithCancel(context.Background())
	const ns = "default"
	const goodImage = "agnhost"

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		readyPodsOfImage(ctx, cs, ns, goodImage)
	}()
	t.Cleanup(wg.Wait)
	t.Cleanup(cancel) // runs before wg.Wait

	labels := map[string]string{"name": "agnhost"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "webserver-deployment", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](10),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxSurge:       ptr.To(intstr.FromInt32(3)),
					MaxUnavailable: ptr.To(intstr.FromInt32(2)),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agnhost", Image: goodImage}}},
			},
		},
	}
	d, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 60*time.Second, func() bool {
		cur, err := cs.AppsV1().Deployments(ns).Get(ctx, d.Name, metav1.GetOptions{})
		return err == nil && cur.Status.ObservedGeneration >= cur.Generation &&
			cur.Status.UpdatedReplicas == 10 && cur.Status.AvailableReplicas == 10 && cur.Status.Replicas == 10
	})
	first := onlyReplicaSet(ctx, t, cs, ns)

	updateDeployment(ctx, t, cs, ns, d.Name, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "webserver:404"
	})
	var second string
	framework.Eventually(t, 60*time.Second, func() bool {
		sizes := replicaSetSizes(ctx, t, cs, ns)
		for name := range sizes {
			if name != first {
				second = name
			}
		}
		return len(sizes) == 2 && sizes[first] == 8 && second != "" && sizes[second] == 5
	})

	updateDeployment(ctx, t, cs, ns, d.Name, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](30) })
	var got map[string]int32
	framework.Eventually(t, 30*time.Second, func() bool {
		got = replicaSetSizes(ctx, t, cs, ns)
		return got[first]+got[second] == 33
	})
	// Give a wrong split time to show: the sizes must hold.
	for range 10 {
		time.Sleep(50 * time.Millisecond)
		got = replicaSetSizes(ctx, t, cs, ns)
		if got[first] != 20 || got[second] != 13 {
			t.Fatalf("after scaling to 30: first (old) = %d, second (new) = %d, want 20 and 13", got[first], got[second])
		}
	}
}

// readyPodsOfImage plays the kubelet until ctx ends: every pod in ns
// whose first container runs image is marked Running and Ready.
func readyPodsOfImage(ctx context.Context, cs kubernetes.Interface, ns, image string) {
	for ctx.Err() == nil {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			for i := range list.Items {
				p := &list.Items[i]
				if p.DeletionTimestamp != nil || p.Spec.Containers[0].Image != image || p.Status.Phase == corev1.PodRunning {
					continue
				}
				_, _ = framework.SetRunningReady(ctx, cs, p)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func onlyReplicaSet(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) string {
	t.Helper()
	sizes := replicaSetSizes(ctx, t, cs, ns)
	if len(sizes) != 1 {
		t.Fatalf("replicasets: %v, want one", sizes)
	}
	for name := range sizes {
		return name
	}
	return ""
}

// replicaSetSizes maps each ReplicaSet in ns to its spec.replicas.
func replicaSetSizes(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) map[string]int32 {
	t.Helper()
	list, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int32{}
	for _, rs := range list.Items {
		out[rs.Name] = ptr.Deref(rs.Spec.Replicas, 1)
	}
	return out
}

func updateDeployment(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string, mutate func(*appsv1.Deployment)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(d)
		_, err = cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("update deployment %s: %v", name, err)
	}
}
