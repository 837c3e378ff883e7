package admissionregistration

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestTables(t *testing.T) {
	twoHooks := validValidating()
	twoHooks.Webhooks = append(twoHooks.Webhooks, twoHooks.Webhooks[0])
	noParams := validPolicy()
	noParams.Spec.ParamKind = nil
	namespaced := validBinding()
	clusterParam := validBinding()
	clusterParam.Spec.ParamRef.Namespace = ""
	bySelector := validBinding()
	bySelector.Spec.ParamRef = &admissionregistrationv1.ParamRef{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}}
	unset := validBinding()
	unset.Spec.ParamRef = nil

	tests := []struct {
		name     string
		resource string
		obj      runtime.Object
		columns  []string
		want     []interface{}
	}{
		{"mutating", "mutatingwebhookconfigurations", validMutating(),
			[]string{"Name", "Webhooks", "Age"}, []interface{}{"pod-policy", int64(1), "<unknown>"}},
		{"validating", "validatingwebhookconfigurations", twoHooks,
			[]string{"Name", "Webhooks", "Age"}, []interface{}{"pod-policy", int64(2), "<unknown>"}},
		{"policy", "validatingadmissionpolicies", validPolicy(),
			[]string{"Name", "Validations", "ParamKind", "Age"}, []interface{}{"replica-limit", int64(1), "rules.example.com/v1/ReplicaLimit", "<unknown>"}},
		{"policy without paramKind", "validatingadmissionpolicies", noParams,
			[]string{"Name", "Validations", "ParamKind", "Age"}, []interface{}{"replica-limit", int64(1), "<unset>", "<unknown>"}},
		{"binding", "validatingadmissionpolicybindings", namespaced,
			[]string{"Name", "PolicyName", "ParamRef", "Age"}, []interface{}{"replica-limit-test", "replica-limit", "default/limit", "<unknown>"}},
		{"binding to a param without namespace", "validatingadmissionpolicybindings", clusterParam,
			nil, []interface{}{"replica-limit-test", "replica-limit", "*/limit", "<unknown>"}},
		{"binding by selector", "validatingadmissionpolicybindings", bySelector,
			nil, []interface{}{"replica-limit-test", "replica-limit", bySelector.Spec.ParamRef.Selector.String(), "<unknown>"}},
		{"binding without paramRef", "validatingadmissionpolicybindings", unset,
			nil, []interface{}{"replica-limit-test", "replica-limit", "<unset>", "<unknown>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl := resource(t, tt.resource).Table
			if tt.columns != nil {
				var names []string
				for _, c := range tbl.Columns {
					names = append(names, c.Name)
					if c.Description == "" {
						t.Errorf("column %s has no description", c.Name)
					}
				}
				if diff := cmp.Diff(tt.columns, names); diff != "" {
					t.Errorf("columns (-want +got):\n%s", diff)
				}
			}
			row := tbl.Row(tt.obj)
			if diff := cmp.Diff(tt.want, row); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
			if len(row) != len(tbl.Columns) {
				t.Errorf("%d cells for %d columns", len(row), len(tbl.Columns))
			}
		})
	}
}
