package deployment_test

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-io/skiff/internal/controller/deployment"
	"github.com/skiff-io/skiff/test/framework"
)

const ns = "rollout"

// start runs the real API server and this controller alone (no
// ReplicaSet controller, no scheduler): the test plays the ReplicaSet
// controller by writing ReplicaSet status.
func start(t *testing.T) kubernetes.Interface {
	t.Helper()
	cs, _ := startWithKubeconfig(t)
	return cs
}

// startWithKubeconfig is start, also returning the admin kubeconfig path.
func startWithKubeconfig(t *testing.T) (kubernetes.Interface, string) {
	t.Helper()
	cluster := framework.StartInProcess(t, framework.WithControllers())
	cs := cluster.NewClient(t)
	ctx := t.Context()
	// Events go to the API server (kubectl describe shows them).
	broadcaster := record.NewBroadcaster(record.WithContext(context.Background()))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	t.Cleanup(broadcaster.Shutdown) // after the controller stops
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "deployment-controller"})
	framework.RunController(t, cs, recorder, framework.Builder(deployment.New))
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return cs, cluster.Kubeconfig
}

func ptr[T any](v T) *T { return &v }

// rsByImage returns the ReplicaSet of the deployment running image.
func rsByImage(t *testing.T, cs kubernetes.Interface, image string) *appsv1.ReplicaSet {
	t.Helper()
	list, err := cs.AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		if c := list.Items[i].Spec.Template.Spec.Containers; len(c) > 0 && c[0].Image == image {
			return &list.Items[i]
		}
	}
	return nil
}

// setRSStatus plays the ReplicaSet controller: status.replicas follows
// spec, and available (and ready) pods are min(available, spec).
func setRSStatus(t *testing.T, cs kubernetes.Interface, name string, available int32) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		rs, err := cs.AppsV1().ReplicaSets(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		spec := *rs.Spec.Replicas
		want := appsv1.ReplicaSetStatus{Replicas: spec, FullyLabeledReplicas: spec, ReadyReplicas: min(available, spec), AvailableReplicas: min(available, spec), ObservedGeneration: rs.Generation}
		if apiequality.Semantic.DeepEqual(rs.Status, want) {
			return nil
		}
		rs.Status = want
		_, err = cs.AppsV1().ReplicaSets(ns).UpdateStatus(context.Background(), rs, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("status of %s: %v", name, err)
	}
}

func getDeploy(t *testing.T, cs kubernetes.Interface) *appsv1.Deployment {
	t.Helper()
	d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func progressing(d *appsv1.Deployment) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == appsv1.DeploymentProgressing {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

// rolledOut reports what kubectl rollout status checks.
func rolledOut(d *appsv1.Deployment, replicas int32) bool {
	c := progressing(d)
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == replicas &&
		d.Status.Replicas == replicas && d.Status.AvailableReplicas == replicas && c != nil && c.Reason == "NewReplicaSetAvailable"
}

func hasEvent(t *testing.T, cs kubernetes.Interface, reason, contains string) bool {
	t.Helper()
	evs, err := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if e.Reason == reason && strings.Contains(e.Message, contains) && e.InvolvedObject.Name == "web" {
			return true
		}
	}
	return false
}

func setImage(t *testing.T, cs kubernetes.Interface, image string, deadline int32) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := getDeploy(t, cs)
		d.Spec.Template.Spec.Containers[0].Image = image
		d.Spec.ProgressDeadlineSeconds = ptr(deadline)
		_, err := cs.AppsV1().Deployments(ns).Update(context.Background(), d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRolloutAndAutoRollback(t *testing.T) {
	cs := start(t)
	ctx := context.Background()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Annotations: map[string]string{deployment.AutoRollbackAnnotation: "true"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:v1"}}},
			},
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: ptr(intstr.FromInt32(1)), MaxUnavailable: ptr(intstr.FromInt32(0))},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// 1. The first ReplicaSet: revision 1, all 3 replicas, hashed, owned.
	var rs1 *appsv1.ReplicaSet
	framework.Eventually(t, 20*time.Second, func() bool {
		rs1 = rsByImage(t, cs, "web:v1")
		return rs1 != nil && *rs1.Spec.Replicas == 3
	})
	hash := rs1.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	if rs1.Annotations[deployment.RevisionAnnotation] != "1" || hash == "" || rs1.Name != "web-"+hash ||
		rs1.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
		t.Fatalf("first replicaset: name %s labels %v annotations %v", rs1.Name, rs1.Labels, rs1.Annotations)
	}
	if ref := metav1.GetControllerOf(rs1); ref == nil || ref.Kind != "Deployment" || ref.Name != "web" {
		t.Fatalf("controller of %s: %+v", rs1.Name, ref)
	}
	setRSStatus(t, cs, rs1.Name, 3)
	framework.Eventually(t, 20*time.Second, func() bool {
		d := getDeploy(t, cs)
		return rolledOut(d, 3) && d.Annotations[deployment.RevisionAnnotation] == "1"
	})
	framework.Eventually(t, 10*time.Second, func() bool {
		return hasEvent(t, cs, "ScalingReplicaSet", "Scaled up replica set "+rs1.Name+" from 0 to 3")
	})

	// 2. A new image rolls out with maxSurge 1, maxUnavailable 0: never
	// more than 4 replicas, never fewer than 3 available.
	setImage(t, cs, "web:v2", 600)
	var rs2 *appsv1.ReplicaSet
	deadline := time.Now().Add(60 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("rollout to v2 did not finish: rs1=%+v rs2=%+v", rs1.Spec.Replicas, rs2)
		}
		rs1, rs2 = rsByImage(t, cs, "web:v1"), rsByImage(t, cs, "web:v2")
		if rs2 != nil {
			n1, n2 := *rs1.Spec.Replicas, *rs2.Spec.Replicas
			if n1+n2 > 4 {
				t.Fatalf("%d+%d replicas, more than 3+maxSurge", n1, n2)
			}
			if n1+rs2.Status.AvailableReplicas < 3 {
				t.Fatalf("old scaled to %d with %d new available: fewer than 3 available", n1, rs2.Status.AvailableReplicas)
			}
			if n1 == 0 && rs1.Status.Replicas == 0 && n2 == 3 && rs2.Status.AvailableReplicas == 3 {
				break
			}
			// The new pods become available, the old ones go away.
			setRSStatus(t, cs, rs2.Name, n2)
			setRSStatus(t, cs, rs1.Name, n1)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	if rs2.Annotations[deployment.RevisionAnnotation] != "2" {
		t.Errorf("second replicaset revision %q", rs2.Annotations[deployment.RevisionAnnotation])
	}
	framework.Eventually(t, 20*time.Second, func() bool {
		d := getDeploy(t, cs)
		return rolledOut(d, 3) && d.Annotations[deployment.RevisionAnnotation] == "2" && d.Status.UnavailableReplicas == 0
	})
	framework.Eventually(t, 10*time.Second, func() bool {
		rs2 = rsByImage(t, cs, "web:v2")
		return rs2.Annotations[deployment.AvailableAtRevisionAnnotation] == "2"
	})
	if !hasEvent(t, cs, "ScalingReplicaSet", "Scaled down replica set "+rs1.Name) {
		t.Error("no scale-down event for the old replica set")
	}

	// 3. A rollout that never becomes available, with a 2 s progress
	// deadline, times out and is rolled back to v2.
	setImage(t, cs, "web:v3-broken", 2)
	framework.Eventually(t, 30*time.Second, func() bool {
		return hasEvent(t, cs, "AutoRollback", "to revision 2")
	})
	d = getDeploy(t, cs)
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "web:v2" {
		t.Fatalf("after auto-rollback the template runs %s", img)
	}
	if _, ok := d.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; ok {
		t.Error("auto-rollback copied pod-template-hash into the deployment")
	}
	rs3 := rsByImage(t, cs, "web:v3-broken")
	if rs3 == nil || rs3.Annotations[deployment.RevisionAnnotation] != "3" {
		t.Fatalf("broken replicaset: %+v", rs3)
	}
	// The broken pods go, v2 is complete again, as revision 4.
	framework.Eventually(t, 20*time.Second, func() bool {
		rs3 = rsByImage(t, cs, "web:v3-broken")
		if *rs3.Spec.Replicas != 0 {
			return false
		}
		setRSStatus(t, cs, rs3.Name, 0)
		d := getDeploy(t, cs)
		return rolledOut(d, 3) && d.Annotations[deployment.RevisionAnnotation] == "4"
	})
	rs2 = rsByImage(t, cs, "web:v2")
	if rs2.Annotations[deployment.RevisionAnnotation] != "4" || rs2.Annotations[deployment.RevisionHistoryAnnotation] != "2" {
		t.Errorf("rolled-back replicaset annotations %v", rs2.Annotations)
	}
	if _, ok := rs3.Annotations[deployment.AvailableAtRevisionAnnotation]; ok {
		t.Error("the broken replicaset is marked available")
	}
	if d := getDeploy(t, cs); d.Spec.Template.Spec.Containers[0].Image != "web:v2" {
		t.Errorf("template changed again: %s", d.Spec.Template.Spec.Containers[0].Image)
	}
}
