package apps

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	required     = field.ErrorTypeRequired
	invalid      = field.ErrorTypeInvalid
	forbidden    = field.ErrorTypeForbidden
	notSupported = field.ErrorTypeNotSupported
	duplicate    = field.ErrorTypeDuplicate
)

func intOrStr(s string) *intstr.IntOrString { v := intstr.Parse(s); return &v }

func TestValidateDeployment(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(d *appsv1.Deployment)
		want   []errKey
	}{
		{"valid", func(d *appsv1.Deployment) {}, nil},
		{"valid recreate", func(d *appsv1.Deployment) {
			d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
		}, nil},
		{"no selector", func(d *appsv1.Deployment) { d.Spec.Selector = nil }, []errKey{{required, "spec.selector"}}},
		{"empty selector", func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} }, []errKey{{invalid, "spec.selector"}}},
		{"bad selector operator", func(d *appsv1.Deployment) {
			d.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}
		}, []errKey{{invalid, "spec.selector"}, {invalid, "spec.selector.matchExpressions[0].operator"}}},
		{"selector does not match", func(d *appsv1.Deployment) {
			d.Spec.Template.Labels = map[string]string{"app": "db"}
		}, []errKey{{invalid, "spec.template.metadata.labels"}}},
		{"negative replicas", func(d *appsv1.Deployment) { d.Spec.Replicas = ptrTo[int32](-1) }, []errKey{{invalid, "spec.replicas"}}},
		{"restart policy", func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure },
			[]errKey{{notSupported, "spec.template.spec.restartPolicy"}}},
		{"active deadline", func(d *appsv1.Deployment) { d.Spec.Template.Spec.ActiveDeadlineSeconds = ptrTo[int64](5) },
			[]errKey{{forbidden, "spec.template.spec.activeDeadlineSeconds"}}},
		{"both zero", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: intOrStr("0%"), MaxSurge: intOrStr("0")}
		}, []errKey{{invalid, "spec.strategy.rollingUpdate.maxUnavailable"}}},
		{"bad percent", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate.MaxSurge = intOrStr("abc")
		}, []errKey{{invalid, "spec.strategy.rollingUpdate.maxSurge"}}},
		{"negative int", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate.MaxSurge = intOrStr("-1")
		}, []errKey{{invalid, "spec.strategy.rollingUpdate.maxSurge"}}},
		{"over 100%", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate.MaxUnavailable = intOrStr("150%")
		}, []errKey{{invalid, "spec.strategy.rollingUpdate.maxUnavailable"}}},
		{"recreate with rollingUpdate", func(d *appsv1.Deployment) {
			d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType
		}, []errKey{{forbidden, "spec.strategy.rollingUpdate"}}},
		{"unknown strategy", func(d *appsv1.Deployment) { d.Spec.Strategy.Type = "Blue" },
			[]errKey{{notSupported, "spec.strategy.type"}}},
		{"progress deadline not above minReady", func(d *appsv1.Deployment) {
			d.Spec.MinReadySeconds = 600
		}, []errKey{{invalid, "spec.progressDeadlineSeconds"}}},
		{"negative history", func(d *appsv1.Deployment) { d.Spec.RevisionHistoryLimit = ptrTo[int32](-2) },
			[]errKey{{invalid, "spec.revisionHistoryLimit"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := resource(t, "deployments")
			d := deployment()
			r.Strategy.Default(d)
			tt.mutate(d)
			checkErrs(t, r.Strategy.Validate(d), tt.want)
		})
	}
}

func TestValidateReplicaSet(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(rs *appsv1.ReplicaSet)
		want   []errKey
	}{
		{"valid", func(rs *appsv1.ReplicaSet) {}, nil},
		{"no selector", func(rs *appsv1.ReplicaSet) { rs.Spec.Selector = nil }, []errKey{{required, "spec.selector"}}},
		{"empty selector", func(rs *appsv1.ReplicaSet) { rs.Spec.Selector.MatchLabels = nil }, []errKey{{invalid, "spec.selector"}}},
		{"mismatch", func(rs *appsv1.ReplicaSet) { rs.Spec.Template.Labels = nil }, []errKey{{invalid, "spec.template.metadata.labels"}}},
		{"negative replicas", func(rs *appsv1.ReplicaSet) { rs.Spec.Replicas = ptrTo[int32](-3) }, []errKey{{invalid, "spec.replicas"}}},
		{"negative minReady", func(rs *appsv1.ReplicaSet) { rs.Spec.MinReadySeconds = -1 }, []errKey{{invalid, "spec.minReadySeconds"}}},
		{"restart never", func(rs *appsv1.ReplicaSet) { rs.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			[]errKey{{notSupported, "spec.template.spec.restartPolicy"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := resource(t, "replicasets")
			rs := replicaSet()
			r.Strategy.Default(rs)
			tt.mutate(rs)
			checkErrs(t, r.Strategy.Validate(rs), tt.want)
		})
	}
}

func TestValidateStatefulSet(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *appsv1.StatefulSet)
		want   []errKey
	}{
		{"valid", func(s *appsv1.StatefulSet) {}, nil},
		{"valid with claims mounted", func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}
			s.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}, nil},
		{"no selector", func(s *appsv1.StatefulSet) { s.Spec.Selector = nil }, []errKey{{required, "spec.selector"}}},
		{"empty selector", func(s *appsv1.StatefulSet) { s.Spec.Selector = &metav1.LabelSelector{} }, []errKey{{invalid, "spec.selector"}}},
		{"mismatch", func(s *appsv1.StatefulSet) { s.Spec.Template.Labels = map[string]string{"app": "x"} },
			[]errKey{{invalid, "spec.template.metadata.labels"}}},
		{"bad pod management", func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = "Random" },
			[]errKey{{invalid, "spec.podManagementPolicy"}}},
		{"missing pod management", func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = "" },
			[]errKey{{required, "spec.podManagementPolicy"}}},
		{"on delete with rollingUpdate", func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType },
			[]errKey{{invalid, "spec.updateStrategy.rollingUpdate"}}},
		{"recreate not served", func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RecreateStatefulSetStrategyType}
		}, []errKey{{invalid, "spec.updateStrategy"}}},
		{"negative partition", func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.Partition = ptrTo[int32](-1) },
			[]errKey{{invalid, "spec.updateStrategy.rollingUpdate.partition"}}},
		{"zero maxUnavailable", func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = intOrStr("0") },
			[]errKey{{invalid, "spec.updateStrategy.rollingUpdate.maxUnavailable"}}},
		{"bad retention", func(s *appsv1.StatefulSet) { s.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled = "Keep" },
			[]errKey{{notSupported, "spec.persistentVolumeClaimRetentionPolicy.whenScaled"}}},
		{"negative ordinals", func(s *appsv1.StatefulSet) { s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: -1} },
			[]errKey{{invalid, "spec.ordinals.start"}}},
		{"restart policy", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			[]errKey{{notSupported, "spec.template.spec.restartPolicy"}}},
		{"active deadline", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.ActiveDeadlineSeconds = ptrTo[int64](9) },
			[]errKey{{invalid, "spec.template.spec.activeDeadlineSeconds"}}},
		{"claim names", func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{}, {ObjectMeta: metav1.ObjectMeta{Name: "Data_1"}},
				{ObjectMeta: metav1.ObjectMeta{Name: "d"}}, {ObjectMeta: metav1.ObjectMeta{Name: "d"}}}
		}, []errKey{{required, "spec.volumeClaimTemplates[0].metadata.name"}, {invalid, "spec.volumeClaimTemplates[1].metadata.name"},
			{duplicate, "spec.volumeClaimTemplates[3].metadata.name"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := resource(t, "statefulsets")
			s := statefulSet()
			r.Strategy.Default(s)
			tt.mutate(s)
			checkErrs(t, r.Strategy.Validate(s), tt.want)
		})
	}
}

func TestValidateDaemonSet(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(ds *appsv1.DaemonSet)
		want   []errKey
	}{
		{"valid", func(ds *appsv1.DaemonSet) {}, nil},
		{"valid surge", func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: intOrStr("0"), MaxSurge: intOrStr("10%")}
		}, nil},
		{"no selector", func(ds *appsv1.DaemonSet) { ds.Spec.Selector = nil }, []errKey{{required, "spec.selector"}}},
		{"empty selector", func(ds *appsv1.DaemonSet) { ds.Spec.Selector = &metav1.LabelSelector{} }, []errKey{{invalid, "spec.selector"}}},
		{"mismatch", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Labels = map[string]string{"app": "x"} },
			[]errKey{{invalid, "spec.template.metadata.labels"}}},
		{"both set", func(ds *appsv1.DaemonSet) { ds.Spec.UpdateStrategy.RollingUpdate.MaxSurge = intOrStr("1") },
			[]errKey{{invalid, "spec.updateStrategy.rollingUpdate.maxSurge"}}},
		{"both zero", func(ds *appsv1.DaemonSet) { ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = intOrStr("0%") },
			[]errKey{{invalid, "spec.updateStrategy.rollingUpdate.maxUnavailable"}}},
		{"missing rollingUpdate", func(ds *appsv1.DaemonSet) { ds.Spec.UpdateStrategy.RollingUpdate = nil },
			[]errKey{{required, "spec.updateStrategy.rollingUpdate"}}},
		{"bad type", func(ds *appsv1.DaemonSet) { ds.Spec.UpdateStrategy.Type = "Now" },
			[]errKey{{notSupported, "spec.updateStrategy.type"}}},
		{"restart policy", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure },
			[]errKey{{notSupported, "spec.template.spec.restartPolicy"}}},
		{"negative minReady", func(ds *appsv1.DaemonSet) { ds.Spec.MinReadySeconds = -5 }, []errKey{{invalid, "spec.minReadySeconds"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := resource(t, "daemonsets")
			ds := daemonSet()
			r.Strategy.Default(ds)
			tt.mutate(ds)
			checkErrs(t, r.Strategy.Validate(ds), tt.want)
		})
	}
}

func TestValidateControllerRevision(t *testing.T) {
	tests := []struct {
		name string
		cr   *appsv1.ControllerRevision
		want []errKey
	}{
		{"valid", &appsv1.ControllerRevision{Data: runtime.RawExtension{Raw: []byte(`{}`)}, Revision: 2}, nil},
		{"no data", &appsv1.ControllerRevision{Revision: 1}, []errKey{{required, "data"}}},
		{"negative revision", &appsv1.ControllerRevision{Data: runtime.RawExtension{Raw: []byte(`{}`)}, Revision: -1},
			[]errKey{{invalid, "revision"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrs(t, resource(t, "controllerrevisions").Strategy.Validate(tt.cr), tt.want)
		})
	}
}

func TestValidateStatusUpdate(t *testing.T) {
	tests := []struct {
		name     string
		resource string
		obj, old runtime.Object
		want     []errKey
	}{
		{"deployment valid", "deployments",
			&appsv1.Deployment{Status: appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 2, AvailableReplicas: 2}},
			&appsv1.Deployment{}, nil},
		{"deployment inconsistent", "deployments",
			&appsv1.Deployment{Status: appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 2, AvailableReplicas: 3, UnavailableReplicas: -1}},
			&appsv1.Deployment{}, []errKey{{invalid, "status.readyReplicas"}, {invalid, "status.availableReplicas"},
				{invalid, "status.availableReplicas"}, {invalid, "status.unavailableReplicas"}}},
		{"deployment collision decremented", "deployments",
			&appsv1.Deployment{Status: appsv1.DeploymentStatus{CollisionCount: ptrTo[int32](1)}},
			&appsv1.Deployment{Status: appsv1.DeploymentStatus{CollisionCount: ptrTo[int32](2)}},
			[]errKey{{invalid, "status.collisionCount"}}},
		{"replicaset fully labeled", "replicasets",
			&appsv1.ReplicaSet{Status: appsv1.ReplicaSetStatus{Replicas: 1, FullyLabeledReplicas: 2}},
			&appsv1.ReplicaSet{}, []errKey{{invalid, "status.fullyLabeledReplicas"}}},
		{"statefulset ready above replicas", "statefulsets",
			&appsv1.StatefulSet{Status: appsv1.StatefulSetStatus{Replicas: 1, ReadyReplicas: 2, AvailableReplicas: 1}},
			&appsv1.StatefulSet{}, []errKey{{invalid, "status.readyReplicas"}}},
		{"daemonset negative", "daemonsets",
			&appsv1.DaemonSet{Status: appsv1.DaemonSetStatus{NumberReady: -1}},
			&appsv1.DaemonSet{}, []errKey{{invalid, "status.numberReady"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrs(t, resource(t, tt.resource).Strategy.ValidateStatusUpdate(tt.obj, tt.old), tt.want)
		})
	}
}

func TestWrongTypeDoesNotPanic(t *testing.T) {
	for _, r := range Resources() {
		other := runtime.Object(&corev1.Pod{})
		if errs := r.Strategy.Validate(other); len(errs) == 0 {
			t.Errorf("%s: Validate accepted a Pod", r.Name)
		}
		if r.Strategy.Default != nil {
			r.Strategy.Default(other)
		}
		if r.Table.Row(other) != nil {
			t.Errorf("%s: Row of a Pod is not nil", r.Name)
		}
		if r.Scale != nil {
			if spec, _, _ := r.Scale.Get(other); spec != 0 {
				t.Errorf("%s: scale of a Pod = %d", r.Name, spec)
			}
		}
		// Zero values of the resource's own type must not panic either.
		obj := r.New()
		if r.Strategy.Default != nil {
			r.Strategy.Default(obj)
		}
		_ = r.Strategy.Validate(obj)
		_ = r.Strategy.ValidateUpdate(r.New(), r.New())
		_ = r.Table.Row(r.New())
	}
}
