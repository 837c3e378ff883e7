package batch

import (
	"context"
	"reflect"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

const (
	required     = field.ErrorTypeRequired
	invalid      = field.ErrorTypeInvalid
	forbidden    = field.ErrorTypeForbidden
	notSupported = field.ErrorTypeNotSupported
	duplicate    = field.ErrorTypeDuplicate
	tooLong      = field.ErrorTypeTooLong
)

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

// create runs what the API server runs on create, minus metadata checks.
func create(t *testing.T, r *registry.Resource, obj runtime.Object) field.ErrorList {
	t.Helper()
	prep := r.Strategy.PrepareForCreate
	if prep == nil {
		prep = registry.DefaultPrepareForCreate
	}
	prep(context.Background(), obj)
	r.Strategy.Default(obj)
	return r.Strategy.Validate(obj)
}

// update runs what the API server runs on update.
func update(t *testing.T, r *registry.Resource, obj, old runtime.Object) field.ErrorList {
	t.Helper()
	prep := r.Strategy.PrepareForUpdate
	if prep == nil {
		prep = registry.DefaultPrepareForUpdate
	}
	prep(context.Background(), obj, old)
	r.Strategy.Default(obj)
	return r.Strategy.ValidateUpdate(obj, old)
}

type errKey struct {
	Type  field.ErrorType
	Field string
}

func sortKeys(k []errKey) []errKey {
	sort.Slice(k, func(i, j int) bool {
		if k[i].Field != k[j].Field {
			return k[i].Field < k[j].Field
		}
		return k[i].Type < k[j].Type
	})
	return k
}

func checkErrs(t *testing.T, got field.ErrorList, want []errKey) {
	t.Helper()
	g := []errKey{}
	for _, e := range got {
		g = append(g, errKey{e.Type, e.Field})
	}
	if want == nil {
		want = []errKey{}
	}
	if diff := cmp.Diff(sortKeys(want), sortKeys(g)); diff != "" {
		t.Errorf("errors (-want +got):\n%s\nall: %v", diff, got)
	}
}

// podTemplate is a valid run-to-completion pod template.
func podTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "pi", Image: "perl:5.34", Command: []string{"perl", "-e", "print 1"}}},
		},
	}
}

func job() *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "default", UID: "0b2c-uid"},
		Spec:       batchv1.JobSpec{Template: podTemplate()},
	}
}

func cronJob() *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "default", UID: "cj-uid"},
		Spec: batchv1.CronJobSpec{
			Schedule:    "*/5 * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: podTemplate()}},
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
		if r.GroupVersion != batchv1.SchemeGroupVersion {
			t.Errorf("%s: group version %v", r.Name, r.GroupVersion)
		}
		if n := reflect.TypeOf(r.New()).Elem().Name(); n != r.Kind {
			t.Errorf("%s: New returns a %s", r.Name, n)
		}
		if n := reflect.TypeOf(r.NewList()).Elem().Name(); n != r.Kind+"List" {
			t.Errorf("%s: NewList returns a %s", r.Name, n)
		}
		got = append(got, entry{r.Name, r.Singular, r.Kind, r.ShortNames, r.Categories, r.Namespaced, r.Status, r.Scale != nil})
	}
	want := []entry{
		{"jobs", "job", "Job", nil, []string{"all"}, true, true, false},
		{"cronjobs", "cronjob", "CronJob", []string{"cj"}, []string{"all"}, true, true, false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("discovery (-want +got):\n%s", diff)
	}
}

func TestWrongTypeDoesNotPanic(t *testing.T) {
	for _, r := range Resources() {
		pod := &corev1.Pod{}
		if errs := r.Strategy.Validate(pod); len(errs) == 0 {
			t.Errorf("%s: Validate accepted a Pod", r.Name)
		}
		r.Strategy.Default(pod)
		if r.Table.Row(pod) != nil {
			t.Errorf("%s: Row of a Pod is not nil", r.Name)
		}
		obj := r.New()
		if r.Strategy.PrepareForCreate != nil {
			r.Strategy.PrepareForCreate(context.Background(), obj)
		}
		r.Strategy.Default(obj)
		_ = r.Strategy.Validate(obj)
		_ = r.Strategy.ValidateUpdate(r.New(), r.New())
		if r.Strategy.ValidateStatusUpdate != nil {
			_ = r.Strategy.ValidateStatusUpdate(r.New(), r.New())
		}
		_ = r.Table.Row(r.New())
	}
}
