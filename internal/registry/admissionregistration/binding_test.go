package admissionregistration

import (
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validBinding() *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "replica-limit-test"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName: "replica-limit",
			ParamRef: &admissionregistrationv1.ParamRef{
				Name: "limit", Namespace: "default", ParameterNotFoundAction: ptr(admissionregistrationv1.DenyAction),
			},
			MatchResources: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"environment": "test"}},
			},
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny, admissionregistrationv1.Audit},
		},
	}
}

func TestValidateBinding(t *testing.T) {
	type spec = admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec
	tests := []struct {
		name   string
		change func(s *spec)
		want   []string
		detail string
	}{
		{name: "valid", change: func(*spec) {}},
		{name: "no paramRef or matchResources", change: func(s *spec) { s.ParamRef, s.MatchResources = nil, nil }},
		{
			name: "paramRef selector",
			change: func(s *spec) {
				s.ParamRef.Name = ""
				s.ParamRef.Selector = &metav1.LabelSelector{}
			},
		},
		{name: "no policyName", change: func(s *spec) { s.PolicyName = "" }, want: []string{"FieldValueRequired spec.policyName"}},
		{name: "bad policyName", change: func(s *spec) { s.PolicyName = "Replica_Limit" }, want: []string{"FieldValueInvalid spec.policyName"}},
		{
			name:   "paramRef without name or selector",
			change: func(s *spec) { s.ParamRef = &admissionregistrationv1.ParamRef{} },
			want:   []string{"FieldValueRequired spec.paramRef", "FieldValueRequired spec.paramRef.parameterNotFoundAction"},
			detail: "one of name or selector must be specified",
		},
		{
			name:   "paramRef with name and selector",
			change: func(s *spec) { s.ParamRef.Selector = &metav1.LabelSelector{} },
			want:   []string{"FieldValueForbidden spec.paramRef.name", "FieldValueForbidden spec.paramRef.selector"},
			detail: "name and selector are mutually exclusive",
		},
		{
			name:   "paramRef name not a path segment",
			change: func(s *spec) { s.ParamRef.Name = "a/b" },
			want:   []string{"FieldValueInvalid spec.paramRef.name"},
			detail: "may not contain '/'",
		},
		{
			name: "paramRef bad selector",
			change: func(s *spec) {
				s.ParamRef.Name = ""
				s.ParamRef.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"a": "not valid"}}
			},
			want: []string{"FieldValueInvalid spec.paramRef.selector.matchLabels"},
		},
		{
			name: "bad parameterNotFoundAction",
			change: func(s *spec) {
				s.ParamRef.ParameterNotFoundAction = ptr(admissionregistrationv1.ParameterNotFoundActionType("Ignore"))
			},
			want:   []string{"FieldValueNotSupported spec.paramRef.parameterNotFoundAction"},
			detail: `supported values: "Deny", "Allow"`,
		},
		{
			name: "empty parameterNotFoundAction",
			change: func(s *spec) {
				s.ParamRef.ParameterNotFoundAction = ptr(admissionregistrationv1.ParameterNotFoundActionType(""))
			},
			want: []string{"FieldValueRequired spec.paramRef.parameterNotFoundAction"},
		},
		{
			name: "bad matchResources",
			change: func(s *spec) {
				s.MatchResources.MatchPolicy = ptr(admissionregistrationv1.MatchPolicyType("Close"))
				s.MatchResources.ResourceRules = []admissionregistrationv1.NamedRuleWithOperations{deploymentRule()}
				s.MatchResources.ResourceRules[0].Scope = ptr(admissionregistrationv1.ScopeType("Global"))
			},
			want: []string{"FieldValueNotSupported spec.matchResources.matchPolicy", "FieldValueNotSupported spec.matchResources.resourceRules[0].scope"},
		},
		{
			name:   "no validationActions",
			change: func(s *spec) { s.ValidationActions = nil },
			want:   []string{"FieldValueRequired spec.validationActions"},
			detail: "at least one validation action is required",
		},
		{
			name: "Deny and Warn",
			change: func(s *spec) {
				s.ValidationActions = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny, admissionregistrationv1.Warn}
			},
			want:   []string{"FieldValueInvalid spec.validationActions"},
			detail: "must not contain both Deny and Warn",
		},
		{
			name: "duplicate and unknown actions",
			change: func(s *spec) {
				s.ValidationActions = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Audit, admissionregistrationv1.Audit, "Block"}
			},
			want:   []string{"FieldValueDuplicate spec.validationActions[1]", "FieldValueNotSupported spec.validationActions[2]"},
			detail: `supported values: "Audit", "Deny", "Warn"`,
		},
	}
	r := resource(t, "validatingadmissionpolicybindings")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := validBinding()
			tt.change(&b.Spec)
			r.Strategy.Default(b)
			checkErrs(t, r.Strategy.Validate(b), tt.want, tt.detail)
			old := validBinding()
			r.Strategy.Default(old)
			checkErrs(t, r.Strategy.ValidateUpdate(b, old), tt.want, tt.detail)
		})
	}
}
