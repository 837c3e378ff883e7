package node

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func errFields(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, string(e.Type)+" "+e.Field)
	}
	return out
}

func rc(handler string) *nodev1.RuntimeClass {
	return &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "rc"}, Handler: handler}
}

func TestValidate(t *testing.T) {
	withOverhead := func(l corev1.ResourceList) *nodev1.RuntimeClass {
		r := rc("runc")
		r.Overhead = &nodev1.Overhead{PodFixed: l}
		return r
	}
	withScheduling := func(s *nodev1.Scheduling) *nodev1.RuntimeClass {
		r := rc("runc")
		r.Scheduling = s
		return r
	}
	tests := []struct {
		name string
		obj  *nodev1.RuntimeClass
		want []string
	}{
		{"runc", rc("runc"), nil},
		{"test-handler", rc("test-handler"), nil},
		{"no handler", rc(""), []string{"FieldValueRequired handler"}},
		{"handler not a label", rc("Kata.Containers"), []string{"FieldValueInvalid handler"}},
		{"overhead", withOverhead(corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("1Mi")}), nil},
		{"negative overhead", withOverhead(corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("-10m")}), []string{"FieldValueInvalid overhead.limits[cpu]"}},
		{"scheduling", withScheduling(&nodev1.Scheduling{
			NodeSelector: map[string]string{"sandbox": "yes"},
			Tolerations:  []corev1.Toleration{{Key: "sandbox", Operator: corev1.TolerationOpExists}},
		}), nil},
		{"bad selector", withScheduling(&nodev1.Scheduling{NodeSelector: map[string]string{"a b": "c"}}),
			[]string{"FieldValueInvalid scheduling.nodeSelector"}},
		{"bad toleration", withScheduling(&nodev1.Scheduling{Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpEqual, Value: "x"}}}),
			[]string{"FieldValueInvalid scheduling.tolerations[0].operator"}},
		{"duplicate toleration", withScheduling(&nodev1.Scheduling{Tolerations: []corev1.Toleration{
			{Key: "a", Operator: corev1.TolerationOpExists}, {Key: "a", Operator: corev1.TolerationOpExists},
		}}), []string{"FieldValueDuplicate scheduling.tolerations[1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errFields(validateRuntimeClass(tt.obj))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// The handler is immutable; the rest may change.
func TestValidateUpdate(t *testing.T) {
	if diff := cmp.Diff([]string{"FieldValueInvalid handler"}, errFields(validateRuntimeClassUpdate(rc("kata"), rc("runc")))); diff != "" {
		t.Errorf("handler change (-want +got):\n%s", diff)
	}
	updated := rc("runc")
	updated.Overhead = &nodev1.Overhead{PodFixed: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}
	if errs := validateRuntimeClassUpdate(updated, rc("runc")); len(errs) != 0 {
		t.Errorf("overhead change refused: %v", errs)
	}
}

func TestTable(t *testing.T) {
	r := Resources()[0]
	if r.Namespaced || r.Name != "runtimeclasses" || r.GroupVersion != nodev1.SchemeGroupVersion {
		t.Fatalf("descriptor: %+v", r)
	}
	want := []interface{}{"rc", "runc", "<unknown>"}
	if diff := cmp.Diff(want, r.Table.Row(rc("runc"))); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if got := len(r.Table.Columns); got != len(want) || r.Table.Columns[1].Name != "Handler" {
		t.Errorf("columns %+v", r.Table.Columns)
	}
}
