package replicaset_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-io/skiff/internal/controller/replicaset"
	"github.com/skiff-io/skiff/test/framework"
)

// start runs a ReplicaSet controller against a fresh in-process server and
// stops it (waiting for Start to return) at cleanup.
func start(t *testing.T) (kubernetes.Interface, informers.SharedInformerFactory, *record.FakeRecorder) {
	t.Helper()
	var factory informers.SharedInformerFactory
	_, client, recorder := framework.StartController(t, func(client kubernetes.Interface, f informers.SharedInformerFactory, rec record.EventRecorder) (*replicaset.Controller, error) {
		factory = f
		return replicaset.New(client, f, rec)
	})
	return client, factory, recorder
}

func newRS(name string, replicas int32) *appsv1.ReplicaSet {
	labels := map[string]string{"app": name}
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
			},
		},
	}
}

// activePods lists the pods labelled app=app that are not being deleted.
func activePods(ctx context.Context, client kubernetes.Interface, app string) ([]corev1.Pod, error) {
	list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

func waitFor(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 20*time.Second, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func waitPodCount(t *testing.T, client kubernetes.Interface, app string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	waitFor(t, fmt.Sprintf("%d pods of %s", n, app), func(ctx context.Context) (bool, error) {
		var err error
		pods, err = activePods(ctx, client, app)
		return err == nil && len(pods) == n, nil
	})
	return pods
}

func markReady(t *testing.T, client kubernetes.Interface, p corev1.Pod) {
	t.Helper()
	framework.MarkReady(context.Background(), t, client, &p)
}

func TestReplicaSet(t *testing.T) {
	client, factory, recorder := start(t)
	ctx := context.Background()

	rs, err := client.AppsV1().ReplicaSets("default").Create(ctx, newRS("web", 5), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods := waitPodCount(t, client, "web", 5)
	for _, p := range pods {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.UID != rs.UID || !strings.HasPrefix(p.Name, "web-") {
			t.Fatalf("pod %s: controller %+v, want ReplicaSet %s", p.Name, ref, rs.UID)
		}
	}

	// Scale down to 2: three pods go, and no more are created.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := client.AppsV1().ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.Replicas = ptr(int32(2))
		_, err = client.AppsV1().ReplicaSets("default").Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	pods = waitPodCount(t, client, "web", 2)

	// Status counts ready pods.
	for _, p := range pods {
		markReady(t, client, p)
	}
	waitFor(t, "status with 2 ready", func(ctx context.Context) (bool, error) {
		cur, err := client.AppsV1().ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		s := cur.Status
		return s.Replicas == 2 && s.ReadyReplicas == 2 && s.AvailableReplicas == 2 && s.FullyLabeledReplicas == 2 &&
			s.ObservedGeneration == cur.Generation, nil
	})

	// A deleted pod is replaced.
	if err := client.CoreV1().Pods("default").Delete(ctx, pods[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replacement pod", func(ctx context.Context) (bool, error) {
		cur, err := activePods(ctx, client, "web")
		if err != nil || len(cur) != 2 {
			return false, nil
		}
		for _, p := range cur {
			if p.Name == pods[0].Name {
				return false, nil
			}
		}
		return true, nil
	})
	waitFor(t, "status with 1 ready", func(ctx context.Context) (bool, error) {
		cur, err := client.AppsV1().ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && cur.Status.Replicas == 2 && cur.Status.ReadyReplicas == 1, nil
	})

	// A matching orphan is adopted instead of creating a new pod.
	orphan := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "stray", Namespace: "default", Labels: map[string]string{"app": "adopt"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}
	if _, err := client.CoreV1().Pods("default").Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The controller's cache must know the orphan before the ReplicaSet
	// appears, or it would rightly create a pod first.
	waitFor(t, "orphan in cache", func(context.Context) (bool, error) {
		_, err := factory.Core().V1().Pods().Lister().Pods("default").Get("stray")
		return err == nil, nil
	})
	adopter, err := client.AppsV1().ReplicaSets("default").Create(ctx, newRS("adopt", 1), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "orphan adopted", func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods("default").Get(ctx, "stray", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		ref := metav1.GetControllerOf(p)
		return ref != nil && ref.UID == adopter.UID, nil
	})
	waitFor(t, "adopter status", func(ctx context.Context) (bool, error) {
		cur, err := client.AppsV1().ReplicaSets("default").Get(ctx, "adopt", metav1.GetOptions{})
		return err == nil && cur.Status.Replicas == 1 && cur.Status.ObservedGeneration == cur.Generation, nil
	})
	if pods, err := activePods(ctx, client, "adopt"); err != nil || len(pods) != 1 || pods[0].Name != "stray" {
		t.Errorf("pods of adopter = %v (err %v), want only stray", podNames(pods), err)
	}

	// Events name the pods.
	var created, deleted bool
	for len(recorder.Events) > 0 {
		e := <-recorder.Events
		created = created || strings.HasPrefix(e, "Normal SuccessfulCreate Created pod: web-")
		deleted = deleted || strings.HasPrefix(e, "Normal SuccessfulDelete Deleted pod: web-")
	}
	if !created || !deleted {
		t.Errorf("events: SuccessfulCreate seen %v, SuccessfulDelete seen %v", created, deleted)
	}
}

func podNames(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
