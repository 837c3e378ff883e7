package apps

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestScale(t *testing.T) {
	sel := &metav1.LabelSelector{
		MatchLabels:      map[string]string{"app": "web"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}},
	}
	tests := []struct {
		resource string
		obj      runtime.Object
	}{
		{"deployments", &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptrTo[int32](3), Selector: sel}, Status: appsv1.DeploymentStatus{Replicas: 2}}},
		{"replicasets", &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Replicas: ptrTo[int32](3), Selector: sel}, Status: appsv1.ReplicaSetStatus{Replicas: 2}}},
		{"statefulsets", &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Replicas: ptrTo[int32](3), Selector: sel}, Status: appsv1.StatefulSetStatus{Replicas: 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			s := resource(t, tt.resource).Scale
			spec, status, selector := s.Get(tt.obj)
			if spec != 3 || status != 2 || selector != "app=web,tier in (a,b)" {
				t.Errorf("Get = %d, %d, %q; want 3, 2, %q", spec, status, selector, "app=web,tier in (a,b)")
			}
			s.SetReplicas(tt.obj, 7)
			if spec, _, _ := s.Get(tt.obj); spec != 7 {
				t.Errorf("after SetReplicas(7): spec.replicas = %d", spec)
			}
		})
	}
}

func TestTableRows(t *testing.T) {
	created := metav1.NewTime(time.Now().Add(-3 * time.Hour))
	meta := metav1.ObjectMeta{Name: "web", Namespace: "default", CreationTimestamp: created}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	tmpl := corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		Containers:   []corev1.Container{{Name: "web", Image: "nginx:1.27"}, {Name: "sidecar", Image: "envoy:1"}},
		NodeSelector: map[string]string{"disk": "ssd"},
	}}
	controller := true
	tests := []struct {
		resource string
		obj      runtime.Object
		want     []interface{}
	}{
		{"deployments", &appsv1.Deployment{ObjectMeta: meta,
			Spec:   appsv1.DeploymentSpec{Replicas: ptrTo[int32](3), Selector: sel, Template: tmpl},
			Status: appsv1.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 1}},
			[]interface{}{"web", "2/3", int64(3), int64(1), "3h", "web,sidecar", "nginx:1.27,envoy:1", "app=web"}},
		{"replicasets", &appsv1.ReplicaSet{ObjectMeta: meta,
			Spec:   appsv1.ReplicaSetSpec{Replicas: ptrTo[int32](3), Selector: sel, Template: tmpl},
			Status: appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 1}},
			[]interface{}{"web", int64(3), int64(2), int64(1), "3h", "web,sidecar", "nginx:1.27,envoy:1", "app=web"}},
		{"statefulsets", &appsv1.StatefulSet{ObjectMeta: meta,
			Spec:   appsv1.StatefulSetSpec{Replicas: ptrTo[int32](2), Selector: sel, Template: tmpl},
			Status: appsv1.StatefulSetStatus{ReadyReplicas: 2}},
			[]interface{}{"web", "2/2", "3h", "web,sidecar", "nginx:1.27,envoy:1"}},
		{"daemonsets", &appsv1.DaemonSet{ObjectMeta: meta,
			Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tmpl},
			Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 5, CurrentNumberScheduled: 4, NumberReady: 3,
				UpdatedNumberScheduled: 2, NumberAvailable: 1}},
			[]interface{}{"web", int64(5), int64(4), int64(3), int64(2), int64(1), "disk=ssd", "3h", "web,sidecar", "nginx:1.27,envoy:1", "app=web"}},
		{"daemonsets", &appsv1.DaemonSet{ObjectMeta: meta},
			[]interface{}{"web", int64(0), int64(0), int64(0), int64(0), int64(0), "<none>", "3h", "", "", "<none>"}},
		{"controllerrevisions", &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "web-6c5d", CreationTimestamp: created,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "web", Controller: &controller}}}, Revision: 2},
			[]interface{}{"web-6c5d", "statefulset.apps/web", int64(2), "3h"}},
		{"controllerrevisions", &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "orphan", CreationTimestamp: created}, Revision: 1},
			[]interface{}{"orphan", "<none>", int64(1), "3h"}},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			tbl := resource(t, tt.resource).Table
			got := tbl.Row(tt.obj)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
			if len(got) != len(tbl.Columns) {
				t.Errorf("%d cells for %d columns", len(got), len(tbl.Columns))
			}
		})
	}
}

func TestTableColumns(t *testing.T) {
	tests := []struct {
		resource string
		want     []string // priority 1 columns marked with a trailing "+"
	}{
		{"deployments", []string{"Name", "Ready", "Up-to-date", "Available", "Age", "Containers+", "Images+", "Selector+"}},
		{"replicasets", []string{"Name", "Desired", "Current", "Ready", "Age", "Containers+", "Images+", "Selector+"}},
		{"statefulsets", []string{"Name", "Ready", "Age", "Containers+", "Images+"}},
		{"daemonsets", []string{"Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age", "Containers+", "Images+", "Selector+"}},
		{"controllerrevisions", []string{"Name", "Controller", "Revision", "Age"}},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			var got []string
			for _, c := range resource(t, tt.resource).Table.Columns {
				n := c.Name
				if c.Priority == 1 {
					n += "+"
				}
				if c.Description == "" {
					t.Errorf("column %s has no description", c.Name)
				}
				got = append(got, n)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("columns (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReplicaSetFields(t *testing.T) {
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod"}, Status: appsv1.ReplicaSetStatus{Replicas: 4}}
	got := resource(t, "replicasets").Fields(rs)
	want := fields.Set{"metadata.name": "web", "metadata.namespace": "prod", "status.replicas": "4"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}
