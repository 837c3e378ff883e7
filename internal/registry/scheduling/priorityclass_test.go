package scheduling

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
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

func pc(name string, value int32, policy *corev1.PreemptionPolicy) *schedulingv1.PriorityClass {
	return &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value, PreemptionPolicy: policy}
}

func TestDefault(t *testing.T) {
	never := corev1.PreemptNever
	for _, tt := range []struct {
		name string
		in   *corev1.PreemptionPolicy
		want corev1.PreemptionPolicy
	}{
		{"unset", nil, corev1.PreemptLowerPriority},
		{"kept", &never, corev1.PreemptNever},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := pc("a", 1, tt.in)
			defaultPriorityClass(p)
			if p.PreemptionPolicy == nil || *p.PreemptionPolicy != tt.want {
				t.Errorf("preemptionPolicy = %v, want %v", p.PreemptionPolicy, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	bad := corev1.PreemptionPolicy("Sometimes")
	globalSystem := pc("system-cluster-critical", SystemCriticalPriority, nil)
	globalSystem.GlobalDefault = true
	tests := []struct {
		name string
		obj  *schedulingv1.PriorityClass
		want []string
	}{
		{"user", pc("high", 1000000, nil), nil},
		{"user max", pc("high", HighestUserDefinablePriority, nil), nil},
		{"user too high", pc("high", HighestUserDefinablePriority+1, nil), []string{"FieldValueForbidden value"}},
		{"system known", pc("system-node-critical", SystemCriticalPriority+1000, nil), nil},
		{"system wrong value", pc("system-node-critical", 5, nil), []string{"FieldValueForbidden metadata.name"}},
		{"system wrong globalDefault", globalSystem, []string{"FieldValueForbidden metadata.name"}},
		{"system unknown", pc("system-mine", 5, nil), []string{"FieldValueForbidden metadata.name"}},
		{"bad policy", pc("a", 5, &bad), []string{"FieldValueNotSupported preemptionPolicy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errFields(validatePriorityClass(tt.obj))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
	for _, s := range SystemPriorityClasses() {
		defaultPriorityClass(s)
		if errs := validatePriorityClass(s); len(errs) != 0 {
			t.Errorf("system class %s invalid: %v", s.Name, errs)
		}
	}
}

func TestValidateUpdate(t *testing.T) {
	never, lower := corev1.PreemptNever, corev1.PreemptLowerPriority
	tests := []struct {
		name     string
		old, obj *schedulingv1.PriorityClass
		want     []string
	}{
		{"same", pc("a", 1, &lower), pc("a", 1, &lower), nil},
		{"value", pc("a", 1, &lower), pc("a", 2, &lower), []string{"FieldValueForbidden value"}},
		{"policy", pc("a", 1, &lower), pc("a", 1, &never), []string{"FieldValueInvalid preemptionPolicy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errFields(validatePriorityClassUpdate(tt.obj, tt.old))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTable(t *testing.T) {
	r := Resources()[0]
	if r.Namespaced || cmp.Diff([]string{"pc"}, r.ShortNames) != "" {
		t.Fatalf("descriptor: %+v", r)
	}
	lower := corev1.PreemptLowerPriority
	p := pc("high", 100, &lower)
	p.GlobalDefault = true
	want := []interface{}{"high", int64(100), true, "<unknown>", "PreemptLowerPriority"}
	if diff := cmp.Diff(want, r.Table.Row(p)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if got := len(r.Table.Columns); got != len(want) {
		t.Errorf("%d columns, want %d", got, len(want))
	}
}
