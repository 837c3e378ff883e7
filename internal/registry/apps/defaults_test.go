package apps

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ignoreTemplates leaves the pod templates to the core package's tests.
var ignoreTemplates = cmpopts.IgnoreFields(corev1.PodTemplateSpec{}, "Spec")

func TestDeploymentDefaults(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: webLabels}
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	tests := []struct {
		name string
		in   appsv1.DeploymentSpec
		want appsv1.DeploymentSpec
	}{{
		name: "empty",
		in:   appsv1.DeploymentSpec{Selector: sel},
		want: appsv1.DeploymentSpec{
			Selector: sel,
			Replicas: ptrTo[int32](1),
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: pct("25%"), MaxSurge: pct("25%")},
			},
			RevisionHistoryLimit:    ptrTo[int32](10),
			ProgressDeadlineSeconds: ptrTo[int32](600),
		},
	}, {
		name: "set values kept",
		in: appsv1.DeploymentSpec{
			Replicas: ptrTo[int32](0),
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: pct("50%")},
			},
			RevisionHistoryLimit:    ptrTo[int32](2),
			ProgressDeadlineSeconds: ptrTo[int32](30),
		},
		want: appsv1.DeploymentSpec{
			Replicas: ptrTo[int32](0),
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: pct("25%"), MaxSurge: pct("50%")},
			},
			RevisionHistoryLimit:    ptrTo[int32](2),
			ProgressDeadlineSeconds: ptrTo[int32](30),
		},
	}, {
		name: "recreate gets no rollingUpdate",
		in:   appsv1.DeploymentSpec{Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}},
		want: appsv1.DeploymentSpec{
			Replicas:                ptrTo[int32](1),
			Strategy:                appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			RevisionHistoryLimit:    ptrTo[int32](10),
			ProgressDeadlineSeconds: ptrTo[int32](600),
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &appsv1.Deployment{Spec: tt.in}
			resource(t, "deployments").Strategy.Default(d)
			if diff := cmp.Diff(tt.want, d.Spec, ignoreTemplates); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReplicaSetDefaults(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   *int32
		want int32
	}{{"unset", nil, 1}, {"zero kept", ptrTo[int32](0), 0}, {"five kept", ptrTo[int32](5), 5}} {
		t.Run(tt.name, func(t *testing.T) {
			rs := &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Replicas: tt.in}}
			resource(t, "replicasets").Strategy.Default(rs)
			if rs.Spec.Replicas == nil || *rs.Spec.Replicas != tt.want {
				t.Errorf("replicas = %v, want %d", rs.Spec.Replicas, tt.want)
			}
		})
	}
}

func TestStatefulSetDefaults(t *testing.T) {
	retain := appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	fs := corev1.PersistentVolumeFilesystem
	block := corev1.PersistentVolumeBlock
	tests := []struct {
		name string
		in   appsv1.StatefulSetSpec
		want appsv1.StatefulSetSpec
	}{{
		name: "empty",
		in:   appsv1.StatefulSetSpec{VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}},
		want: appsv1.StatefulSetSpec{
			Replicas:            ptrTo[int32](1),
			PodManagementPolicy: appsv1.OrderedReadyPodManagement,
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
				Type:          appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptrTo[int32](0)},
			},
			RevisionHistoryLimit: ptrTo[int32](10),
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: retain, WhenScaled: retain,
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec:       corev1.PersistentVolumeClaimSpec{VolumeMode: &fs},
				Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
			}},
		},
	}, {
		name: "set values kept",
		in: appsv1.StatefulSetSpec{
			Replicas:            ptrTo[int32](3),
			PodManagementPolicy: appsv1.ParallelPodManagement,
			UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{Spec: corev1.PersistentVolumeClaimSpec{VolumeMode: &block}}},
		},
		want: appsv1.StatefulSetSpec{
			Replicas:             ptrTo[int32](3),
			PodManagementPolicy:  appsv1.ParallelPodManagement,
			UpdateStrategy:       appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
			RevisionHistoryLimit: ptrTo[int32](10),
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType, WhenScaled: retain,
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				Spec:   corev1.PersistentVolumeClaimSpec{VolumeMode: &block},
				Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
			}},
		},
	}, {
		name: "rolling update partition defaulted",
		in: appsv1.StatefulSetSpec{UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
			Type: appsv1.RollingUpdateStatefulSetStrategyType, RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{},
		}},
		want: appsv1.StatefulSetSpec{
			Replicas:            ptrTo[int32](1),
			PodManagementPolicy: appsv1.OrderedReadyPodManagement,
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
				Type:          appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptrTo[int32](0)},
			},
			RevisionHistoryLimit: ptrTo[int32](10),
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: retain, WhenScaled: retain,
			},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &appsv1.StatefulSet{Spec: tt.in}
			resource(t, "statefulsets").Strategy.Default(s)
			if diff := cmp.Diff(tt.want, s.Spec, ignoreTemplates); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDaemonSetDefaults(t *testing.T) {
	one, zero := intstr.FromInt32(1), intstr.FromInt32(0)
	tests := []struct {
		name string
		in   appsv1.DaemonSetSpec
		want appsv1.DaemonSetSpec
	}{{
		name: "empty",
		want: appsv1.DaemonSetSpec{
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &one, MaxSurge: &zero},
			},
			RevisionHistoryLimit: ptrTo[int32](10),
		},
	}, {
		name: "on delete",
		in:   appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}},
		want: appsv1.DaemonSetSpec{
			UpdateStrategy:       appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType},
			RevisionHistoryLimit: ptrTo[int32](10),
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := &appsv1.DaemonSet{Spec: tt.in}
			resource(t, "daemonsets").Strategy.Default(ds)
			if diff := cmp.Diff(tt.want, ds.Spec, ignoreTemplates); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrepareForCreate(t *testing.T) {
	d := deployment()
	d.Status.Replicas = 4
	d.Generation = 7
	if errs := create(t, resource(t, "deployments"), d); len(errs) != 0 {
		t.Fatalf("create: %v", errs)
	}
	if d.Generation != 1 || d.Status.Replicas != 0 {
		t.Errorf("deployment generation %d, status.replicas %d; want 1, 0", d.Generation, d.Status.Replicas)
	}

	ds := daemonSet()
	if errs := create(t, resource(t, "daemonsets"), ds); len(errs) != 0 {
		t.Fatalf("create: %v", errs)
	}
	if got := ds.Annotations[appsv1.DeprecatedTemplateGeneration]; got != "1" || ds.Generation != 1 {
		t.Errorf("daemonset template generation %q, generation %d; want \"1\", 1", got, ds.Generation)
	}
}
