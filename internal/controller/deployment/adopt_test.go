package deployment_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-io/skiff/internal/controller/deployment"
	"github.com/skiff-io/skiff/test/framework"
)

// TestAdoptAndCollision: an orphan ReplicaSet matching the selector is
// adopted as an old revision; a foreign ReplicaSet holding the new
// ReplicaSet's name raises collisionCount and the new one gets another
// name.
func TestAdoptAndCollision(t *testing.T) {
	cs := start(t)
	ctx := context.Background()
	tmpl := func(image string, lbls map[string]string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: lbls},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
		}
	}
	sel := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: tmpl("web:v1", sel),
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: ptr(intstr.FromInt32(1)), MaxUnavailable: ptr(intstr.FromInt32(0))},
			},
		},
	}
	// Create it first to learn the template as the server defaults it,
	// with the controller not yet able to roll out (paused).
	d.Spec.Paused = true
	created, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	taken := "web-" + deployment.TemplateHash(&created.Spec.Template, nil)
	other := map[string]string{"app": "other"}
	foreign := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: taken, Namespace: ns, Labels: other},
		Spec:       appsv1.ReplicaSetSpec{Replicas: ptr[int32](0), Selector: &metav1.LabelSelector{MatchLabels: other}, Template: tmpl("other", other)},
	}
	legacy := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: ns, Labels: sel},
		Spec:       appsv1.ReplicaSetSpec{Replicas: ptr[int32](2), Selector: &metav1.LabelSelector{MatchLabels: sel}, Template: tmpl("web:v0", sel)},
	}
	for _, rs := range []*appsv1.ReplicaSet{foreign, legacy} {
		if _, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setRSStatus(t, cs, "legacy", 2)
	framework.Eventually(t, 20*time.Second, func() bool {
		rs, err := cs.AppsV1().ReplicaSets(ns).Get(ctx, "legacy", metav1.GetOptions{})
		return err == nil && metav1.GetControllerOf(rs) != nil && metav1.GetControllerOf(rs).UID == created.UID
	})

	// Resume: the rollout needs a new ReplicaSet, whose name is taken.
	p := []byte(`{"spec":{"paused":false}}`)
	if _, err := cs.AppsV1().Deployments(ns).Patch(ctx, "web", "application/merge-patch+json", p, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var newRS *appsv1.ReplicaSet
	framework.Eventually(t, 20*time.Second, func() bool {
		newRS = rsByImage(t, cs, "web:v1")
		return newRS != nil
	})
	if newRS.Name == taken {
		t.Fatalf("new replicaset took the foreign name %s", taken)
	}
	if got := getDeploy(t, cs).Status.CollisionCount; got == nil || *got != 1 {
		t.Errorf("collisionCount = %v, want 1", got)
	}
	f, err := cs.AppsV1().ReplicaSets(ns).Get(ctx, taken, metav1.GetOptions{})
	if err != nil || metav1.GetControllerOf(f) != nil || f.Spec.Template.Spec.Containers[0].Image != "other" {
		t.Errorf("foreign replicaset touched: %+v, %v", f, err)
	}
	// The adopted ReplicaSet is an old one: it has no revision, so the new
	// ReplicaSet is revision 1.
	if newRS.Annotations[deployment.RevisionAnnotation] != "1" {
		t.Errorf("new revision %q", newRS.Annotations[deployment.RevisionAnnotation])
	}
}
