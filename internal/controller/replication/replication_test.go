package replication_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-io/skiff/internal/controller/replicaset"
	"github.com/skiff-io/skiff/internal/controller/replication"
	"github.com/skiff-io/skiff/test/framework"
)

func newRC(name string, replicas int32, image string) *corev1.ReplicationController {
	labels := map[string]string{"app": name}
	return &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ReplicationControllerSpec{
			Replicas: &replicas,
			Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
			},
		},
	}
}

// activePods lists the pods labelled app=app that are not being deleted.
func activePods(ctx context.Context, t *testing.T, client kubernetes.Interface, app string) []corev1.Pod {
	t.Helper()
	list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func getRC(ctx context.Context, t *testing.T, client kubernetes.Interface, name string) *corev1.ReplicationController {
	t.Helper()
	rc, err := client.CoreV1().ReplicationControllers("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// The ReplicaSet controller, run over ReplicationControllers, creates and
// deletes their pods, adopts orphans, reports status on the RC and records
// its events on the RC.
func TestReplicationManager(t *testing.T) {
	cluster := framework.StartInProcess(t, framework.WithControllers())
	client := cluster.NewClient(t)
	recorder := record.NewFakeRecorder(framework.RecorderSize)
	recorder.IncludeObject = true
	var factory informers.SharedInformerFactory
	framework.RunController(t, client, recorder, func(c kubernetes.Interface, f informers.SharedInformerFactory, r record.EventRecorder) (*replicaset.Controller, error) {
		factory = f
		return replication.New(c, f, r)
	})
	ctx := context.Background()

	rc, err := client.CoreV1().ReplicationControllers("default").Create(ctx, newRC("web", 3, "nginx"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pods []corev1.Pod
	framework.Eventually(t, 20*time.Second, func() bool {
		pods = activePods(ctx, t, client, "web")
		return len(pods) == 3
	})
	for _, p := range pods {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.UID != rc.UID || ref.Kind != "ReplicationController" || ref.APIVersion != "v1" ||
			!strings.HasPrefix(p.Name, "web-") {
			t.Fatalf("pod %s: controller %+v, want ReplicationController %s", p.Name, ref, rc.UID)
		}
	}

	// Scale down to 2; mark both Ready: status counts them.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := getRC(ctx, t, client, "web")
		two := int32(2)
		cur.Spec.Replicas = &two
		_, err := client.CoreV1().ReplicationControllers("default").Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 20*time.Second, func() bool {
		pods = activePods(ctx, t, client, "web")
		return len(pods) == 2
	})
	for i := range pods {
		framework.MarkReady(ctx, t, client, &pods[i])
	}
	framework.Eventually(t, 20*time.Second, func() bool {
		cur := getRC(ctx, t, client, "web")
		s := cur.Status
		return cur.Generation == 2 && s.Replicas == 2 && s.FullyLabeledReplicas == 2 && s.ReadyReplicas == 2 &&
			s.AvailableReplicas == 2 && s.ObservedGeneration == 2
	})

	// A matching orphan is adopted rather than a pod created.
	orphan := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "stray", Namespace: "default", Labels: map[string]string{"app": "adopt"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}
	if _, err := client.CoreV1().Pods("default").Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 20*time.Second, func() bool {
		_, err := factory.Core().V1().Pods().Lister().Pods("default").Get("stray")
		return err == nil
	})
	adopter, err := client.CoreV1().ReplicationControllers("default").Create(ctx, newRC("adopt", 1, "nginx"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 20*time.Second, func() bool {
		p, err := client.CoreV1().Pods("default").Get(ctx, "stray", metav1.GetOptions{})
		ref := metav1.GetControllerOf(p)
		return err == nil && ref != nil && ref.UID == adopter.UID && ref.Kind == "ReplicationController"
	})
	framework.Eventually(t, 20*time.Second, func() bool {
		return getRC(ctx, t, client, "adopt").Status.Replicas == 1
	})
	if pods := activePods(ctx, t, client, "adopt"); len(pods) != 1 || pods[0].Name != "stray" {
		t.Errorf("pods of adopter: %d, want only stray", len(pods))
	}

	// Pods that cannot be created (an image with a trailing space passes
	// the template's validation but not a pod's) set ReplicaFailure.
	if _, err := client.CoreV1().ReplicationControllers("default").Create(ctx, newRC("broken", 1, "nginx "), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 20*time.Second, func() bool {
		for _, c := range getRC(ctx, t, client, "broken").Status.Conditions {
			if c.Type == corev1.ReplicationControllerReplicaFailure && c.Status == corev1.ConditionTrue && c.Reason == "FailedCreate" {
				return true
			}
		}
		return false
	})

	// Events are recorded on the ReplicationControllers.
	var created, deleted, failed bool
	const onRC = " involvedObject{kind=ReplicationController,apiVersion=v1}"
	for len(recorder.Events) > 0 {
		e := <-recorder.Events
		created = created || strings.HasPrefix(e, "Normal SuccessfulCreate Created pod: web-") && strings.HasSuffix(e, onRC)
		deleted = deleted || strings.HasPrefix(e, "Normal SuccessfulDelete Deleted pod: web-") && strings.HasSuffix(e, onRC)
		failed = failed || strings.HasPrefix(e, "Warning FailedCreate Error creating: ") && strings.HasSuffix(e, onRC)
	}
	if !created || !deleted || !failed {
		t.Errorf("events on the RC: SuccessfulCreate %v, SuccessfulDelete %v, FailedCreate %v", created, deleted, failed)
	}
}
