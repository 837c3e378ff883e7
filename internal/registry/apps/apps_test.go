package apps

import (
	"context"
	"reflect"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// resource returns this package's descriptor for name, failing the test
// when there is none.
func resource(t *testing.T, name string) *registry.Resource {
	t.Helper()
	for _, r := range Resources() {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no resource %q", name)
	return nil
}

// create runs what the API server runs on create, minus metadata checks:
// PrepareForCreate (or the default), Default, Validate.
func create(t *testing.T, r *registry.Resource, obj runtime.Object) field.ErrorList {
	t.Helper()
	prep := r.Strategy.PrepareForCreate
	if prep == nil {
		prep = registry.DefaultPrepareForCreate
	}
	prep(context.Background(), obj)
	if r.Strategy.Default != nil {
		r.Strategy.Default(obj)
	}
	return r.Strategy.Validate(obj)
}

// update runs what the API server runs on update: PrepareForUpdate (or the
// default), Default, ValidateUpdate.
func update(t *testing.T, r *registry.Resource, obj, old runtime.Object) field.ErrorList {
	t.Helper()
	prep := r.Strategy.PrepareForUpdate
	if prep == nil {
		prep = registry.DefaultPrepareForUpdate
	}
	prep(context.Background(), obj, old)
	if r.Strategy.Default != nil {
		r.Strategy.Default(obj)
	}
	return r.Strategy.ValidateUpdate(obj, old)
}

// errKey is what validation tests compare: the error type and field path.
type errKey struct {
	Type  field.ErrorType
	Field string
}

func keys(errs field.ErrorList) []errKey {
	out := []errKey{}
	for _, e := range errs {
		out = append(out, errKey{e.Type, e.Field})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Field != out[j].Field {
			return out[i].Field < out[j].Field
		}
		return out[i].Type < out[j].Type
	})
	return out
}

func checkErrs(t *testing.T, got field.ErrorList, want []errKey) {
	t.Helper()
	if want == nil {
		want = []errKey{}
	}
	sort.Slice(want, func(i, j int) bool {
		if want[i].Field != want[j].Field {
			return want[i].Field < want[j].Field
		}
		return want[i].Type < want[j].Type
	})
	if diff := cmp.Diff(want, keys(got)); diff != "" {
		t.Errorf("errors (-want +got):\n%s\nall: %v", diff, got)
	}
}

var webLabels = map[string]string{"app": "web"}

// podTemplate is a valid long-running pod template labelled app=web.
func podTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyAlways,
			Containers:    []corev1.Container{{Name: "web", Image: "nginx:1.27"}},
		},
	}
}

func objectMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", UID: "uid-1"}
}

func deployment() *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: objectMeta("web"),
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate(),
		},
	}
}

func replicaSet() *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: objectMeta("web-5d8f"),
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate(),
		},
	}
}

func statefulSet() *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: objectMeta("db"),
		Spec: appsv1.StatefulSetSpec{
			ServiceName: "db",
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template:    podTemplate(),
		},
	}
}

func daemonSet() *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: objectMeta("agent"),
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate(),
		},
	}
}

func TestResourcesDiscovery(t *testing.T) {
	type entry struct {
		Name, Singular, Kind string
		ShortNames           []string
		Categories           []string
		Namespaced, Status   bool
		Scale                bool
	}
	var got []entry
	for _, r := range Resources() {
		if r.GroupVersion != appsv1.SchemeGroupVersion {
			t.Errorf("%s: group version %v", r.Name, r.GroupVersion)
		}
		if n := reflect.TypeOf(r.New()).Elem().Name(); n != r.Kind {
			t.Errorf("%s: New returns a %s", r.Name, n)
		}
		if n := reflect.TypeOf(r.NewList()).Elem().Name(); n != r.Kind+"List" {
			t.Errorf("%s: NewList returns a %s", r.Name, n)
		}
		if r.Strategy.Validate == nil || r.Strategy.ValidateUpdate == nil || r.Table == nil {
			t.Errorf("%s: incomplete descriptor", r.Name)
		}
		got = append(got, entry{r.Name, r.Singular, r.Kind, r.ShortNames, r.Categories, r.Namespaced, r.Status, r.Scale != nil})
	}
	all := []string{"all"}
	want := []entry{
		{"deployments", "deployment", "Deployment", []string{"deploy"}, all, true, true, true},
		{"replicasets", "replicaset", "ReplicaSet", []string{"rs"}, all, true, true, true},
		{"statefulsets", "statefulset", "StatefulSet", []string{"sts"}, all, true, true, true},
		{"daemonsets", "daemonset", "DaemonSet", []string{"ds"}, all, true, true, false},
		{"controllerrevisions", "controllerrevision", "ControllerRevision", nil, nil, true, false, false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("discovery (-want +got):\n%s", diff)
	}
}
