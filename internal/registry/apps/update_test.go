package apps

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// stored returns obj as the server would have stored it on create.
func stored[T runtime.Object](t *testing.T, resourceName string, obj T) T {
	t.Helper()
	if errs := create(t, resource(t, resourceName), obj); len(errs) != 0 {
		t.Fatalf("create %s: %v", resourceName, errs)
	}
	return obj
}

func TestUpdateValidation(t *testing.T) {
	tests := []struct {
		name     string
		resource string
		old      runtime.Object
		mutate   func(obj runtime.Object)
		want     []errKey
	}{
		{"deployment scale and image", "deployments", deployment(), func(o runtime.Object) {
			d := o.(*appsv1.Deployment)
			d.Spec.Replicas = ptrTo[int32](5)
			d.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
		}, nil},
		{"deployment selector immutable", "deployments", deployment(), func(o runtime.Object) {
			d := o.(*appsv1.Deployment)
			d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "front"}}
			d.Spec.Template.Labels = map[string]string{"app": "web", "tier": "front"}
		}, []errKey{{invalid, "spec.selector"}}},
		{"replicaset selector immutable", "replicasets", replicaSet(), func(o runtime.Object) {
			o.(*appsv1.ReplicaSet).Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}}
		}, []errKey{{invalid, "spec.selector"}}},
		{"daemonset selector immutable", "daemonsets", daemonSet(), func(o runtime.Object) {
			o.(*appsv1.DaemonSet).Spec.Selector.MatchLabels = map[string]string{"app": "web", "x": "y"}
		}, []errKey{{invalid, "spec.selector"}, {invalid, "spec.template.metadata.labels"}}},
		{"statefulset mutable fields", "statefulsets", statefulSet(), func(o runtime.Object) {
			s := o.(*appsv1.StatefulSet)
			s.Spec.Replicas = ptrTo[int32](4)
			s.Spec.Template.Spec.Containers[0].Image = "postgres:17"
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
			s.Spec.MinReadySeconds = 3
			s.Spec.RevisionHistoryLimit = ptrTo[int32](1)
			s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 1}
			s.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
		}, nil},
		{"statefulset service name forbidden", "statefulsets", statefulSet(), func(o runtime.Object) {
			o.(*appsv1.StatefulSet).Spec.ServiceName = "other"
		}, []errKey{{forbidden, "spec"}}},
		{"statefulset claims forbidden", "statefulsets", statefulSet(), func(o runtime.Object) {
			o.(*appsv1.StatefulSet).Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}
		}, []errKey{{forbidden, "spec"}}},
		{"statefulset pod management forbidden", "statefulsets", statefulSet(), func(o runtime.Object) {
			o.(*appsv1.StatefulSet).Spec.PodManagementPolicy = appsv1.ParallelPodManagement
		}, []errKey{{forbidden, "spec"}}},
		{"controllerrevision data immutable", "controllerrevisions",
			&appsv1.ControllerRevision{Data: runtime.RawExtension{Raw: []byte(`{"a":1}`)}, Revision: 1},
			func(o runtime.Object) { o.(*appsv1.ControllerRevision).Data.Raw = []byte(`{"a":2}`) },
			[]errKey{{invalid, "data"}}},
		{"controllerrevision revision mutable", "controllerrevisions",
			&appsv1.ControllerRevision{Data: runtime.RawExtension{Raw: []byte(`{"a":1}`)}, Revision: 1},
			func(o runtime.Object) { o.(*appsv1.ControllerRevision).Revision = 3 }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := stored(t, tt.resource, tt.old)
			obj := old.DeepCopyObject()
			tt.mutate(obj)
			checkErrs(t, update(t, resource(t, tt.resource), obj, old), tt.want)
		})
	}
}

func TestGeneration(t *testing.T) {
	tests := []struct {
		name     string
		resource string
		old      runtime.Object
		mutate   func(obj runtime.Object)
		want     int64
	}{
		{"deployment no change", "deployments", deployment(), func(runtime.Object) {}, 1},
		{"deployment omitted defaults are no change", "deployments", deployment(), func(o runtime.Object) {
			d := o.(*appsv1.Deployment)
			d.Spec.Strategy = appsv1.DeploymentStrategy{}
			d.Spec.RevisionHistoryLimit = nil
		}, 1},
		{"deployment spec change", "deployments", deployment(), func(o runtime.Object) {
			o.(*appsv1.Deployment).Spec.Paused = true
		}, 2},
		{"deployment annotation change", "deployments", deployment(), func(o runtime.Object) {
			o.(*appsv1.Deployment).Annotations = map[string]string{"kubernetes.io/change-cause": "x"}
		}, 2},
		{"deployment label change", "deployments", deployment(), func(o runtime.Object) {
			o.(*appsv1.Deployment).Labels = map[string]string{"a": "b"}
		}, 1},
		{"deployment status ignored", "deployments", deployment(), func(o runtime.Object) {
			o.(*appsv1.Deployment).Status.Replicas = 9
		}, 1},
		{"replicaset annotation change", "replicasets", replicaSet(), func(o runtime.Object) {
			o.(*appsv1.ReplicaSet).Annotations = map[string]string{"a": "b"}
		}, 1},
		{"replicaset scale", "replicasets", replicaSet(), func(o runtime.Object) {
			o.(*appsv1.ReplicaSet).Spec.Replicas = ptrTo[int32](3)
		}, 2},
		{"statefulset scale", "statefulsets", statefulSet(), func(o runtime.Object) {
			o.(*appsv1.StatefulSet).Spec.Replicas = ptrTo[int32](3)
		}, 2},
		{"daemonset min ready", "daemonsets", daemonSet(), func(o runtime.Object) {
			o.(*appsv1.DaemonSet).Spec.MinReadySeconds = 3
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := stored(t, tt.resource, tt.old)
			obj := old.DeepCopyObject()
			tt.mutate(obj)
			update(t, resource(t, tt.resource), obj, old)
			if got := obj.(metav1.Object).GetGeneration(); got != tt.want {
				t.Errorf("generation = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestDaemonSetTemplateGeneration(t *testing.T) {
	r := resource(t, "daemonsets")
	old := stored(t, "daemonsets", daemonSet())
	tests := []struct {
		name          string
		mutate        func(ds *appsv1.DaemonSet)
		wantTemplate  string
		wantGenerated int64
	}{
		{"no change", func(*appsv1.DaemonSet) {}, "1", 1},
		{"client cannot set it", func(ds *appsv1.DaemonSet) { ds.Annotations[appsv1.DeprecatedTemplateGeneration] = "9" }, "1", 1},
		{"client cannot drop it", func(ds *appsv1.DaemonSet) { ds.Annotations = nil }, "1", 1},
		{"template change", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "agent:2" }, "2", 2},
		{"other spec change", func(ds *appsv1.DaemonSet) { ds.Spec.MinReadySeconds = 1 }, "1", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := old.DeepCopy()
			tt.mutate(ds)
			r.Strategy.PrepareForUpdate(context.Background(), ds, old)
			if got := ds.Annotations[appsv1.DeprecatedTemplateGeneration]; got != tt.wantTemplate || ds.Generation != tt.wantGenerated {
				t.Errorf("template generation %q, generation %d; want %q, %d", got, ds.Generation, tt.wantTemplate, tt.wantGenerated)
			}
		})
	}
}

func TestDeploymentStatusUpdateKeepsLabels(t *testing.T) {
	r := resource(t, "deployments")
	old := stored(t, "deployments", deployment())
	old.Labels = map[string]string{"app": "web"}
	d := old.DeepCopy()
	d.Labels = map[string]string{"app": "other"}
	d.Annotations = map[string]string{"deployment.kubernetes.io/revision": "1"}
	d.Spec.Replicas = ptrTo[int32](7)
	d.Status.Replicas = 1
	r.Strategy.PrepareForStatusUpdate(context.Background(), d, old)
	if d.Labels["app"] != "web" || *d.Spec.Replicas != 1 || d.Status.Replicas != 1 ||
		d.Annotations["deployment.kubernetes.io/revision"] != "1" || d.Generation != 1 {
		t.Errorf("after status update: labels %v, replicas %d, status.replicas %d, annotations %v, generation %d",
			d.Labels, *d.Spec.Replicas, d.Status.Replicas, d.Annotations, d.Generation)
	}
}
