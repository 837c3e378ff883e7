package coordination

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func ptr[T any](v T) *T { return &v }

func errFields(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, string(e.Type)+" "+e.Field)
	}
	return out
}

func TestValidateLease(t *testing.T) {
	strategy := coordinationv1.OldestEmulationVersion
	custom := coordinationv1.CoordinatedLeaseStrategy("example.com/mine")
	bad := coordinationv1.CoordinatedLeaseStrategy("Newest")
	tests := []struct {
		name string
		spec coordinationv1.LeaseSpec
		want []string
	}{
		{name: "empty", spec: coordinationv1.LeaseSpec{}},
		{name: "valid", spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("node-1"), LeaseDurationSeconds: ptr[int32](40), LeaseTransitions: ptr[int32](0)}},
		{name: "zero duration", spec: coordinationv1.LeaseSpec{LeaseDurationSeconds: ptr[int32](0)},
			want: []string{"FieldValueInvalid spec.leaseDurationSeconds"}},
		{name: "negative transitions", spec: coordinationv1.LeaseSpec{LeaseTransitions: ptr[int32](-1)},
			want: []string{"FieldValueInvalid spec.leaseTransitions"}},
		{name: "strategy builtin", spec: coordinationv1.LeaseSpec{Strategy: &strategy, PreferredHolder: ptr("a")}},
		{name: "strategy custom", spec: coordinationv1.LeaseSpec{Strategy: &custom}},
		{name: "strategy unknown", spec: coordinationv1.LeaseSpec{Strategy: &bad},
			want: []string{"FieldValueNotSupported spec.strategy"}},
		{name: "preferred without strategy", spec: coordinationv1.LeaseSpec{PreferredHolder: ptr("a")},
			want: []string{"FieldValueForbidden spec.preferredHolder"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "l", Namespace: "ns"}, Spec: tt.spec}
			if diff := cmp.Diff(tt.want, errFields(validateLease(l))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLeaseTable(t *testing.T) {
	r := Resources()[0]
	if r.Name != "leases" || r.Singular != "lease" || !r.Namespaced || r.Status {
		t.Fatalf("descriptor: %+v", r)
	}
	created := metav1.NewTime(time.Now().Add(-90 * time.Second))
	tests := []struct {
		name  string
		lease *coordinationv1.Lease
		want  []interface{}
	}{
		{"held", &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "kube-scheduler", CreationTimestamp: created}, Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("node-1_abc")}},
			[]interface{}{"kube-scheduler", "node-1_abc", "90s"}},
		{"free", &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "x"}},
			[]interface{}{"x", "", "<unknown>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row := r.Table.Row(tt.lease)
			if len(row) != len(r.Table.Columns) {
				t.Fatalf("row has %d cells, table %d columns", len(row), len(r.Table.Columns))
			}
			if diff := cmp.Diff(tt.want, row); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}
