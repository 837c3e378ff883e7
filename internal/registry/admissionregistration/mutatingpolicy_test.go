package admissionregistration

import (
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// validMutatingPolicy uses params, a variable, a match condition and
// both patch types.
func validMutatingPolicy() *admissionregistrationv1.MutatingAdmissionPolicy {
	return &admissionregistrationv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "sidecar"},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			ParamKind:          &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
			MatchConstraints:   &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{deploymentRule()}},
			MatchConditions:    []admissionregistrationv1.MatchCondition{{Name: "has-params", Expression: "params != null"}},
			Variables:          []admissionregistrationv1.Variable{{Name: "team", Expression: "params.data.team"}},
			ReinvocationPolicy: admissionregistrationv1.IfNeededReinvocationPolicy,
			Mutations: []admissionregistrationv1.Mutation{
				{
					PatchType: admissionregistrationv1.PatchTypeApplyConfiguration,
					ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{
						Expression: `Object{metadata: Object.metadata{labels: {"team": variables.team}}}`,
					},
				},
				{
					PatchType: admissionregistrationv1.PatchTypeJSONPatch,
					JSONPatch: &admissionregistrationv1.JSONPatch{
						Expression: `[JSONPatch{op: "replace", path: "/spec/replicas", value: object.spec.replicas + 1}]`,
					},
				},
			},
		},
	}
}

func TestValidateMutatingPolicy(t *testing.T) {
	type spec = admissionregistrationv1.MutatingAdmissionPolicySpec
	tests := []struct {
		name      string
		change    func(s *spec)
		noDefault bool
		want      []string
		detail    string
	}{
		{name: "valid", change: func(*spec) {}},
		{
			name:      "required fields left to the defaults",
			noDefault: true,
			want:      []string{"FieldValueRequired spec.failurePolicy", "FieldValueRequired spec.matchConstraints.matchPolicy", "FieldValueRequired spec.matchConstraints.namespaceSelector", "FieldValueRequired spec.matchConstraints.objectSelector"},
			change:    func(*spec) {},
		},
		{
			name:   "no match constraints",
			change: func(s *spec) { s.MatchConstraints = nil },
			want:   []string{"FieldValueRequired spec.matchConstraints"},
		},
		{
			name:   "no resource rules",
			change: func(s *spec) { s.MatchConstraints.ResourceRules = nil },
			want:   []string{"FieldValueRequired spec.matchConstraints.resourceRules"},
		},
		{
			name: "DELETE",
			change: func(s *spec) {
				s.MatchConstraints.ResourceRules[0].Operations = []admissionregistrationv1.OperationType{admissionregistrationv1.Delete}
			},
			want:   []string{"FieldValueNotSupported spec.matchConstraints.resourceRules.operations"},
			detail: `supported values: "*", "CONNECT", "CREATE", "UPDATE"`,
		},
		{
			name:   "no mutations",
			change: func(s *spec) { s.Mutations = nil },
			want:   []string{"FieldValueRequired spec.mutations"},
			detail: "mutations must contain at least one item",
		},
		{
			name:   "no reinvocation policy",
			change: func(s *spec) { s.ReinvocationPolicy = "" },
			want:   []string{"FieldValueRequired spec.reinvocationPolicy"},
		},
		{
			name:   "unknown reinvocation policy",
			change: func(s *spec) { s.ReinvocationPolicy = "Sometimes" },
			want:   []string{"FieldValueNotSupported spec.reinvocationPolicy"},
		},
		{
			name:   "unknown patch type",
			change: func(s *spec) { s.Mutations[0].PatchType = "StrategicMerge" },
			want:   []string{"FieldValueNotSupported spec.mutations[0].patchType"},
		},
		{
			name:   "no patch type",
			change: func(s *spec) { s.Mutations[0].PatchType = "" },
			want:   []string{"FieldValueRequired spec.mutations[0].patchType"},
		},
		{
			name:   "member missing",
			change: func(s *spec) { s.Mutations[1].JSONPatch = nil },
			want:   []string{"FieldValueRequired spec.mutations[1].jsonPatch"},
			detail: "must be specified when patchType is JSONPatch",
		},
		{
			name: "other member set",
			change: func(s *spec) {
				s.Mutations[1].ApplyConfiguration = &admissionregistrationv1.ApplyConfiguration{Expression: "Object{}"}
			},
			want:   []string{"FieldValueInvalid spec.mutations[1].applyConfiguration"},
			detail: "must not be specified when patchType is JSONPatch",
		},
		{
			name:   "empty expression",
			change: func(s *spec) { s.Mutations[0].ApplyConfiguration.Expression = " " },
			want:   []string{"FieldValueRequired spec.mutations[0].applyConfiguration.expression"},
		},
		{
			name:   "apply configuration not an Object",
			change: func(s *spec) { s.Mutations[0].ApplyConfiguration.Expression = `"text"` },
			want:   []string{"FieldValueInvalid spec.mutations[0].applyConfiguration.expression"},
		},
		{
			name:   "JSON patch not a list",
			change: func(s *spec) { s.Mutations[1].JSONPatch.Expression = `JSONPatch{op: "remove", path: "/x"}` },
			want:   []string{"FieldValueInvalid spec.mutations[1].jsonPatch.expression"},
		},
		{
			name:   "params without paramKind",
			change: func(s *spec) { s.ParamKind = nil },
			want:   []string{"FieldValueInvalid spec.matchConditions[0].expression", "FieldValueInvalid spec.variables[0].expression"},
		},
		{
			name:   "bad paramKind",
			change: func(s *spec) { s.ParamKind.Kind = "" },
			want:   []string{"FieldValueRequired spec.paramKind.kind"},
		},
	}
	r := resource(t, "mutatingadmissionpolicies")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validMutatingPolicy()
			tt.change(&p.Spec)
			if !tt.noDefault {
				r.Strategy.Default(p)
			}
			checkErrs(t, r.Strategy.Validate(p), tt.want, tt.detail)
		})
	}
}

func TestMutatingPolicyDefaults(t *testing.T) {
	p := validMutatingPolicy()
	defaultMutatingPolicy(p)
	m := p.Spec.MatchConstraints
	if *p.Spec.FailurePolicy != admissionregistrationv1.Fail || *m.MatchPolicy != admissionregistrationv1.Equivalent ||
		m.NamespaceSelector == nil || m.ObjectSelector == nil || *m.ResourceRules[0].Scope != admissionregistrationv1.AllScopes {
		t.Errorf("defaulted spec = %+v", p.Spec)
	}
	if p.Spec.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
		t.Errorf("reinvocationPolicy = %q, want it kept", p.Spec.ReinvocationPolicy)
	}
}

func TestValidateMutatingPolicyUpdate(t *testing.T) {
	r := resource(t, "mutatingadmissionpolicies")
	// A match condition that does not compile stands for one stored by a
	// server whose CEL knew more.
	old := validMutatingPolicy()
	old.Spec.MatchConditions[0].Expression = "params.unknownFunction()"
	r.Strategy.Default(old)

	same := old.DeepCopy()
	same.Spec.ReinvocationPolicy = admissionregistrationv1.NeverReinvocationPolicy
	checkErrs(t, r.Strategy.ValidateUpdate(same, old), nil, "")

	newParamKind := old.DeepCopy()
	newParamKind.Spec.ParamKind.Kind = "Secret"
	checkErrs(t, r.Strategy.ValidateUpdate(newParamKind, old), []string{"FieldValueInvalid spec.matchConditions[0].expression"}, "")

	bad := old.DeepCopy()
	bad.Spec.Mutations = nil
	checkErrs(t, r.Strategy.ValidateUpdate(bad, old), []string{"FieldValueRequired spec.mutations"}, "")
}

func TestValidateMutatingBinding(t *testing.T) {
	tests := []struct {
		name string
		spec admissionregistrationv1.MutatingAdmissionPolicyBindingSpec
		want []string
	}{
		// The conformance test's binding: a policy name and nothing else.
		{name: "policy name only", spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: "replicalimit-policy.example.com"}},
		{name: "no policy name", want: []string{"FieldValueRequired spec.policyName"}},
		{
			name: "bad policy name",
			spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: "Not_A_Name"},
			want: []string{"FieldValueInvalid spec.policyName"},
		},
		{
			name: "DELETE",
			spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: "p", MatchResources: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Delete},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
				}}},
			}},
			want: []string{"FieldValueNotSupported spec.matchResources.resourceRules.operations"},
		},
		{
			name: "paramRef without name or selector",
			spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: "p", ParamRef: &admissionregistrationv1.ParamRef{
				ParameterNotFoundAction: ptr(admissionregistrationv1.DenyAction),
			}},
			want: []string{"FieldValueRequired spec.paramRef"},
		},
	}
	r := resource(t, "mutatingadmissionpolicybindings")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &admissionregistrationv1.MutatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Spec: tt.spec}
			r.Strategy.Default(b)
			checkErrs(t, r.Strategy.Validate(b), tt.want, "")
		})
	}
}

func TestMutatingPolicyTables(t *testing.T) {
	p := validMutatingPolicy()
	if row := mutatingPolicyTable.Row(p); row[1] != int64(2) || row[2] != "v1/ConfigMap" {
		t.Errorf("policy row = %v, want 2 mutations and v1/ConfigMap", row)
	}
	b := &admissionregistrationv1.MutatingAdmissionPolicyBinding{Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
		PolicyName: "sidecar", ParamRef: &admissionregistrationv1.ParamRef{Name: "owner", Namespace: "ns"},
	}}
	if row := mutatingBindingTable.Row(b); row[1] != "sidecar" || row[2] != "ns/owner" {
		t.Errorf("binding row = %v", row)
	}
}
