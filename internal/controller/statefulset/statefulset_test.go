package statefulset_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-io/skiff/internal/controller/statefulset"
	"github.com/skiff-io/skiff/test/framework"
)

func start(t *testing.T) kubernetes.Interface {
	t.Helper()
	_, client, _ := framework.StartController(t, framework.Builder(statefulset.New))
	return client
}

func waitFor(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 20*time.Second, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func getPod(ctx context.Context, client kubernetes.Interface, name string) (*corev1.Pod, error) {
	return client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
}

// waitPod waits for pod name to exist (not being deleted), optionally
// with a UID other than notUID.
func waitPod(t *testing.T, client kubernetes.Interface, name string, notUID string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waitFor(t, "pod "+name, func(ctx context.Context) (bool, error) {
		p, err := getPod(ctx, client, name)
		if err != nil || p.DeletionTimestamp != nil || string(p.UID) == notUID {
			return false, nil
		}
		pod = p
		return true, nil
	})
	return pod
}

func markReady(t *testing.T, client kubernetes.Interface, p *corev1.Pod) {
	t.Helper()
	framework.MarkReady(context.Background(), t, client, p)
}

func getSet(ctx context.Context, client kubernetes.Interface) (*appsv1.StatefulSet, error) {
	return client.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
}

// rolloutDone is kubectl rollout status's test for a RollingUpdate set
// (k8s.io/kubectl pkg/polymorphichelpers StatefulSetStatusViewer).
func rolloutDone(s *appsv1.StatefulSet) bool {
	if s.Status.ObservedGeneration == 0 || s.Generation > s.Status.ObservedGeneration {
		return false
	}
	if s.Spec.Replicas != nil && s.Status.ReadyReplicas < *s.Spec.Replicas {
		return false
	}
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil && s.Spec.Replicas != nil {
		return s.Status.UpdatedReplicas >= *s.Spec.Replicas-*ru.Partition
	}
	return s.Status.UpdateRevision == s.Status.CurrentRevision
}

func TestStatefulSetOrderedAndPartitionedUpdate(t *testing.T) {
	client := start(t)
	ctx := context.Background()
	labels := map[string]string{"app": "web"}
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr(int32(3)),
			ServiceName: "nginx",
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1"}}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "www"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
		},
	}
	created, err := client.AppsV1().StatefulSets("default").Create(ctx, set, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// OrderedReady: each pod appears only after the one before is Ready.
	pods := map[int]*corev1.Pod{}
	for i := range 3 {
		name := fmt.Sprintf("web-%d", i)
		p := waitPod(t, client, name, "")
		// The set has seen this pod (status counts it) and still has not
		// created the next one.
		waitFor(t, fmt.Sprintf("status counting %d pods", i+1), func(ctx context.Context) (bool, error) {
			s, err := getSet(ctx, client)
			return err == nil && s.Status.Replicas == int32(i+1), nil
		})
		if i < 2 {
			if _, err := getPod(ctx, client, fmt.Sprintf("web-%d", i+1)); !apierrors.IsNotFound(err) {
				t.Fatalf("web-%d exists (err %v) before %s is ready", i+1, err, name)
			}
		}
		if p.Spec.Hostname != name || p.Spec.Subdomain != "nginx" || p.Labels[appsv1.StatefulSetPodNameLabel] != name ||
			p.Labels[appsv1.PodIndexLabel] != fmt.Sprint(i) || p.Labels[appsv1.ControllerRevisionHashLabelKey] == "" {
			t.Errorf("pod %s identity: hostname %q subdomain %q labels %v", name, p.Spec.Hostname, p.Spec.Subdomain, p.Labels)
		}
		if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != created.UID {
			t.Errorf("pod %s controller = %+v", name, ref)
		}
		// The template's volume "www" becomes the pod's claim (the API
		// server adds the service account token volume after it).
		claim := "www-" + name
		if len(p.Spec.Volumes) == 0 || p.Spec.Volumes[0].Name != "www" || p.Spec.Volumes[0].PersistentVolumeClaim == nil || p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != claim {
			t.Errorf("pod %s volumes = %+v, want www on claim %s", name, p.Spec.Volumes, claim)
		}
		if _, err := client.CoreV1().PersistentVolumeClaims("default").Get(ctx, claim, metav1.GetOptions{}); err != nil {
			t.Errorf("claim %s: %v", claim, err)
		}
		markReady(t, client, p)
		pods[i] = p
	}
	var oldRev string
	waitFor(t, "rollout complete", func(ctx context.Context) (bool, error) {
		s, err := getSet(ctx, client)
		if err != nil {
			return false, nil
		}
		oldRev = s.Status.UpdateRevision
		return rolloutDone(s) && s.Status.ReadyReplicas == 3 && s.Status.CurrentReplicas == 3 &&
			s.Status.CurrentRevision == s.Status.UpdateRevision && oldRev == pods[0].Labels[appsv1.ControllerRevisionHashLabelKey], nil
	})

	// A template change with partition 2 replaces only web-2.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := getSet(ctx, client)
		if err != nil {
			return err
		}
		s.Spec.Template.Spec.Containers[0].Image = "nginx:2"
		s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{
			Type:          appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr(int32(2))},
		}
		_, err = client.AppsV1().StatefulSets("default").Update(ctx, s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	web2 := waitPod(t, client, "web-2", string(pods[2].UID))
	if web2.Spec.Containers[0].Image != "nginx:2" || web2.Labels[appsv1.ControllerRevisionHashLabelKey] == oldRev {
		t.Errorf("new web-2: image %q revision %q (old %q)", web2.Spec.Containers[0].Image, web2.Labels[appsv1.ControllerRevisionHashLabelKey], oldRev)
	}
	markReady(t, client, web2)
	waitFor(t, "partitioned rollout complete", func(ctx context.Context) (bool, error) {
		s, err := getSet(ctx, client)
		return err == nil && rolloutDone(s) && s.Status.UpdatedReplicas == 1 && s.Status.CurrentRevision == oldRev &&
			s.Status.UpdateRevision != oldRev, nil
	})
	for i := range 2 {
		p, err := getPod(ctx, client, fmt.Sprintf("web-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if p.UID != pods[i].UID || p.Spec.Containers[0].Image != "nginx:1" || p.Labels[appsv1.ControllerRevisionHashLabelKey] != oldRev {
			t.Errorf("web-%d was touched: uid %s->%s image %q", i, pods[i].UID, p.UID, p.Spec.Containers[0].Image)
		}
	}
	revs, err := client.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(revs.Items) != 2 {
		t.Fatalf("revisions: %d (err %v), want 2", len(revs.Items), err)
	}

	// Scaling down to 1 removes web-2, then web-1; claims stay.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := getSet(ctx, client)
		if err != nil {
			return err
		}
		s.Spec.Replicas = ptr(int32(1))
		_, err = client.AppsV1().StatefulSets("default").Update(ctx, s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "scale down to 1", func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(list.Items) != 1 || list.Items[0].Name != "web-0" {
			return false, nil
		}
		s, err := getSet(ctx, client)
		return err == nil && s.Status.Replicas == 1 && rolloutDone(s), nil
	})
	if _, err := client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "www-web-2", metav1.GetOptions{}); err != nil {
		t.Errorf("claim www-web-2 after scale down: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
