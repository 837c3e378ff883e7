package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func errFields(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, string(e.Type)+" "+e.Field)
	}
	return out
}

func ios(v intstr.IntOrString) *intstr.IntOrString { return &v }

func TestValidate(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	weird := policyv1.UnhealthyPodEvictionPolicyType("Sometimes")
	tests := []struct {
		name string
		spec policyv1.PodDisruptionBudgetSpec
		want []string
	}{
		{"min int", policyv1.PodDisruptionBudgetSpec{MinAvailable: ios(intstr.FromInt32(2)), Selector: sel}, nil},
		{"max percent", policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ios(intstr.FromString("25%")), Selector: sel}, nil},
		{"both", policyv1.PodDisruptionBudgetSpec{MinAvailable: ios(intstr.FromInt32(1)), MaxUnavailable: ios(intstr.FromInt32(1))},
			[]string{"FieldValueInvalid spec"}},
		{"negative", policyv1.PodDisruptionBudgetSpec{MinAvailable: ios(intstr.FromInt32(-1))},
			[]string{"FieldValueInvalid spec.minAvailable"}},
		{"not a percent", policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ios(intstr.FromString("half"))},
			[]string{"FieldValueInvalid spec.maxUnavailable"}},
		{"over 100%", policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ios(intstr.FromString("101%"))},
			[]string{"FieldValueInvalid spec.maxUnavailable"}},
		{"bad selector", policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a b": "c"}}},
			[]string{"FieldValueInvalid spec.selector.matchLabels"}},
		{"bad policy", policyv1.PodDisruptionBudgetSpec{UnhealthyPodEvictionPolicy: &weird},
			[]string{"FieldValueNotSupported spec.unhealthyPodEvictionPolicy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: tt.spec}
			if diff := cmp.Diff(tt.want, errFields(validatePDB(pdb))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateStatus(t *testing.T) {
	pdb := &policyv1.PodDisruptionBudget{Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: -1, ExpectedPods: -2}}
	want := []string{"FieldValueInvalid status.disruptionsAllowed", "FieldValueInvalid status.expectedPods"}
	if diff := cmp.Diff(want, errFields(validatePDBStatusUpdate(pdb, pdb.DeepCopy()))); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestTable(t *testing.T) {
	r := Resources()[0]
	if !r.Status || cmp.Diff([]string{"pdb"}, r.ShortNames) != "" {
		t.Fatalf("descriptor: %+v", r)
	}
	tests := []struct {
		name string
		pdb  *policyv1.PodDisruptionBudget
		want []interface{}
	}{
		{"min", &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ios(intstr.FromInt32(2))},
			Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1}},
			[]interface{}{"a", "2", "N/A", int64(1), "<unknown>"}},
		{"max", &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ios(intstr.FromString("10%"))}},
			[]interface{}{"b", "N/A", "10%", int64(0), "<unknown>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, r.Table.Row(tt.pdb)); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}
