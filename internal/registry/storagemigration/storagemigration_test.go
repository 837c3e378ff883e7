package storagemigration

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	svmv1 "k8s.io/api/storagemigration/v1"
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

func svm(group, resource string, conds ...metav1.Condition) *svmv1.StorageVersionMigration {
	return &svmv1.StorageVersionMigration{
		Spec:   svmv1.StorageVersionMigrationSpec{Resource: metav1.GroupResource{Group: group, Resource: resource}},
		Status: svmv1.StorageVersionMigrationStatus{Conditions: conds},
	}
}

func cond(t svmv1.MigrationConditionType, s metav1.ConditionStatus) metav1.Condition {
	return metav1.Condition{Type: string(t), Status: s, Reason: "R", LastTransitionTime: metav1.Now()}
}

func TestValidate(t *testing.T) {
	s := Resources()[0].Strategy
	tests := []struct {
		name string
		obj  *svmv1.StorageVersionMigration
		want []string
	}{
		{"core", svm("", "foo"), nil},
		{"apps", svm("apps", "deployments"), nil},
		{"no resource", svm("apps", ""), []string{"FieldValueRequired spec.resource.resource"}},
		{"resource not a label", svm("", "Foo.Bar"), []string{"FieldValueInvalid spec.resource.resource"}},
		{"bad group", svm("Apps_", "foo"), []string{"FieldValueInvalid spec.resource.group"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errFields(s.Validate(tt.obj))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
	if diff := cmp.Diff([]string{"FieldValueInvalid spec"}, errFields(s.ValidateUpdate(svm("", "bar"), svm("", "foo")))); diff != "" {
		t.Errorf("spec change (-want +got):\n%s", diff)
	}
}

func TestValidateStatusUpdate(t *testing.T) {
	s := Resources()[0].Strategy
	withRV := func(m *svmv1.StorageVersionMigration, rv string) *svmv1.StorageVersionMigration {
		m.Status.ResourceVersion = rv
		return m
	}
	tests := []struct {
		name     string
		obj, old *svmv1.StorageVersionMigration
		want     []string
	}{
		{"running", svm("", "foo", cond(svmv1.MigrationRunning, metav1.ConditionTrue)), svm("", "foo"), nil},
		{"succeeded and failed", svm("", "foo", cond(svmv1.MigrationSucceeded, metav1.ConditionTrue), cond(svmv1.MigrationFailed, metav1.ConditionTrue)),
			svm("", "foo"), []string{"FieldValueInvalid status.conditions"}},
		{"unsucceed", svm("", "foo", cond(svmv1.MigrationSucceeded, metav1.ConditionFalse)),
			svm("", "foo", cond(svmv1.MigrationSucceeded, metav1.ConditionTrue)), []string{"FieldValueInvalid status.conditions"}},
		{"unfail", svm("", "foo"), svm("", "foo", cond(svmv1.MigrationFailed, metav1.ConditionTrue)), []string{"FieldValueInvalid status.conditions"}},
		{"bad resourceVersion", withRV(svm("", "foo"), "abc"), svm("", "foo"), []string{"FieldValueInvalid status.resourceVersion"}},
		{"resourceVersion set", withRV(svm("", "foo"), "10"), svm("", "foo"), nil},
		{"resourceVersion changed", withRV(svm("", "foo"), "11"), withRV(svm("", "foo"), "10"), []string{"FieldValueInvalid status.resourceVersion"}},
		{"condition without reason", svm("", "foo", metav1.Condition{Type: "Running", Status: metav1.ConditionTrue, LastTransitionTime: metav1.Now()}),
			svm("", "foo"), []string{"FieldValueRequired status.conditions[0].reason"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errFields(s.ValidateStatusUpdate(tt.obj, tt.old))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrepare(t *testing.T) {
	s := Resources()[0].Strategy
	m := svm("", "foo", cond(svmv1.MigrationRunning, metav1.ConditionTrue))
	s.PrepareForCreate(context.Background(), m)
	if len(m.Status.Conditions) != 0 || m.Generation != 0 {
		t.Errorf("create kept status %v or set generation %d", m.Status, m.Generation)
	}
	old := svm("", "foo", cond(svmv1.MigrationRunning, metav1.ConditionTrue))
	upd := svm("", "foo")
	s.PrepareForUpdate(context.Background(), upd, old)
	if len(upd.Status.Conditions) != 1 {
		t.Errorf("update dropped status: %v", upd.Status)
	}
	row := Resources()[0].Table.Row(svm("apps", "deployments", cond(svmv1.MigrationSucceeded, metav1.ConditionTrue)))
	if diff := cmp.Diff([]interface{}{"", "deployments.apps", "Succeeded"}, row); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

// The strategy takes zero values without panicking.
func TestStrategyDoesNotPanic(t *testing.T) {
	r := Resources()[0]
	obj, old := r.New(), r.New()
	r.Strategy.PrepareForCreate(context.Background(), obj)
	r.Strategy.PrepareForUpdate(context.Background(), obj, old)
	r.Strategy.Validate(obj)
	r.Strategy.ValidateUpdate(obj, old)
	r.Strategy.ValidateStatusUpdate(obj, old)
	r.Table.Row(obj)
}
