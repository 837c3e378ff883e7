package admissionregistration

import (
	"fmt"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func deploymentRule() admissionregistrationv1.NamedRuleWithOperations {
	return admissionregistrationv1.NamedRuleWithOperations{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
	}}
}

// validPolicy uses every kind of expression, params and variables.
func validPolicy() *admissionregistrationv1.ValidatingAdmissionPolicy {
	return &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "replica-limit"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			ParamKind:        &admissionregistrationv1.ParamKind{APIVersion: "rules.example.com/v1", Kind: "ReplicaLimit"},
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{deploymentRule()}},
			MatchConditions: []admissionregistrationv1.MatchCondition{
				{Name: "has-params", Expression: "params != null"},
			},
			Variables: []admissionregistrationv1.Variable{
				{Name: "replicas", Expression: "object.spec.replicas"},
				{Name: "limit", Expression: "params.maxReplicas"},
			},
			Validations: []admissionregistrationv1.Validation{{
				Expression:        "variables.replicas <= variables.limit",
				Message:           "too many replicas",
				MessageExpression: "'at most ' + string(variables.limit) + ' replicas'",
				Reason:            ptr(metav1.StatusReasonForbidden),
			}},
			AuditAnnotations: []admissionregistrationv1.AuditAnnotation{
				{Key: "high-replica-count", ValueExpression: "'Deployment spec.replicas set to ' + string(object.spec.replicas)"},
			},
		},
	}
}

func TestValidatePolicy(t *testing.T) {
	type spec = admissionregistrationv1.ValidatingAdmissionPolicySpec
	tests := []struct {
		name      string
		change    func(s *spec)
		noDefault bool
		want      []string
		detail    string
	}{
		{name: "valid", change: func(*spec) {}},
		{
			name: "minimal",
			change: func(s *spec) {
				*s = spec{
					MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{deploymentRule()}},
					Validations:      []admissionregistrationv1.Validation{{Expression: "object.spec.replicas < 100"}},
				}
			},
		},
		{
			name:   "audit annotations only",
			change: func(s *spec) { s.Validations = nil },
		},
		{
			name:      "required fields left to the defaults",
			noDefault: true,
			change: func(s *spec) {
				s.MatchConstraints = &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{deploymentRule()}}
			},
			want: []string{
				"FieldValueRequired spec.failurePolicy",
				"FieldValueRequired spec.matchConstraints.matchPolicy",
				"FieldValueRequired spec.matchConstraints.namespaceSelector",
				"FieldValueRequired spec.matchConstraints.objectSelector",
			},
		},
		{
			name:   "bad failurePolicy",
			change: func(s *spec) { s.FailurePolicy = ptr(admissionregistrationv1.FailurePolicyType("Retry")) },
			want:   []string{"FieldValueNotSupported spec.failurePolicy"},
		},
		{
			name:   "paramKind without apiVersion and kind",
			change: func(s *spec) { s.ParamKind = &admissionregistrationv1.ParamKind{} },
			want:   []string{"FieldValueRequired spec.paramKind.apiVersion", "FieldValueRequired spec.paramKind.kind"},
		},
		{
			name:   "paramKind apiVersion with two slashes",
			change: func(s *spec) { s.ParamKind.APIVersion = "a/b/v1" },
			want:   []string{"FieldValueInvalid spec.paramKind.apiVersion"},
			detail: "unexpected GroupVersion string: a/b/v1",
		},
		{
			name:   "paramKind apiVersion without version",
			change: func(s *spec) { s.ParamKind.APIVersion = "example.com/" },
			want:   []string{"FieldValueInvalid spec.paramKind.apiVersion"},
			detail: "version must be specified",
		},
		{
			name:   "paramKind bad group and version",
			change: func(s *spec) { s.ParamKind.APIVersion = "Example.com/V1" },
			want:   []string{"FieldValueInvalid spec.paramKind.apiVersion", "FieldValueInvalid spec.paramKind.apiVersion"},
		},
		{name: "paramKind core group", change: func(s *spec) { s.ParamKind.APIVersion, s.ParamKind.Kind = "v1", "ConfigMap" }},
		{
			name:   "paramKind bad kind",
			change: func(s *spec) { s.ParamKind.Kind = "Replica_Limit" },
			want:   []string{"FieldValueInvalid spec.paramKind.kind"},
			detail: "may have mixed case, but should otherwise match: ",
		},
		{
			name:   "no matchConstraints",
			change: func(s *spec) { s.MatchConstraints = nil },
			want:   []string{"FieldValueRequired spec.matchConstraints"},
		},
		{
			name:   "no resourceRules",
			change: func(s *spec) { s.MatchConstraints.ResourceRules = nil },
			want:   []string{"FieldValueRequired spec.matchConstraints.resourceRules"},
		},
		{
			name: "resourceNames",
			change: func(s *spec) {
				s.MatchConstraints.ResourceRules[0].ResourceNames = []string{"a", "b/c", "a"}
				s.MatchConstraints.ExcludeResourceRules = []admissionregistrationv1.NamedRuleWithOperations{{}}
			},
			want: []string{
				"FieldValueInvalid spec.matchConstraints.resourceRules[0].resourceNames[1]",
				"FieldValueDuplicate spec.matchConstraints.resourceRules[0].resourceNames[2]",
				"FieldValueRequired spec.matchConstraints.excludeResourceRules[0].operations",
				"FieldValueRequired spec.matchConstraints.excludeResourceRules[0].apiGroups",
				"FieldValueRequired spec.matchConstraints.excludeResourceRules[0].apiVersions",
				"FieldValueRequired spec.matchConstraints.excludeResourceRules[0].resources",
			},
		},
		{
			name: "bad selector",
			change: func(s *spec) {
				s.MatchConstraints.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"a": "not valid"}}
			},
			want: []string{"FieldValueInvalid spec.matchConstraints.namespaceSelector.matchLabels"},
		},
		{
			name:   "neither validations nor auditAnnotations",
			change: func(s *spec) { s.Validations, s.AuditAnnotations = nil, nil },
			want:   []string{"FieldValueRequired spec.validations", "FieldValueRequired spec.auditAnnotations"},
			detail: "validations or auditAnnotations must contain at least one item",
		},
		{
			name: "match condition without paramKind uses params",
			change: func(s *spec) {
				s.ParamKind = nil
				s.Variables = s.Variables[:1]
				s.Validations = []admissionregistrationv1.Validation{{Expression: "variables.replicas < 5"}}
			},
			want:   []string{"FieldValueInvalid spec.matchConditions[0].expression"},
			detail: "undeclared reference to 'params'",
		},
		{
			name:   "match condition cannot use variables",
			change: func(s *spec) { s.MatchConditions[0].Expression = "variables.replicas > 1" },
			want:   []string{"FieldValueInvalid spec.matchConditions[0].expression"},
			detail: "undeclared reference to 'variables'",
		},
		{
			name:   "validation without expression",
			change: func(s *spec) { s.Validations[0].Expression = " " },
			want:   []string{"FieldValueRequired spec.validations[0].expression"},
			detail: "expression is not specified",
		},
		{
			name:   "validation does not compile",
			change: func(s *spec) { s.Validations[0].Expression = "object.spec.replicas >" },
			want:   []string{"FieldValueInvalid spec.validations[0].expression"},
			detail: "compilation failed: ERROR: <input>:1:",
		},
		{
			name:   "validation not a bool",
			change: func(s *spec) { s.Validations[0].Expression = "variables.limit" },
			want:   []string{"FieldValueInvalid spec.validations[0].expression"},
			detail: "must evaluate to bool",
		},
		{
			name:   "validation uses an unknown variable",
			change: func(s *spec) { s.Validations[0].Expression = "variables.nope > 1" },
			want:   []string{"FieldValueInvalid spec.validations[0].expression"},
			detail: "compilation failed",
		},
		{
			name: "validation uses variables when there are none",
			change: func(s *spec) {
				s.Variables = nil
				s.Validations[0].MessageExpression = ""
			},
			want:   []string{"FieldValueInvalid spec.validations[0].expression"},
			detail: "undeclared reference to 'variables'",
		},
		{
			name:   "validation uses the authorizer",
			change: func(s *spec) { s.Validations[0].Expression = "authorizer.requestResource.check('update').allowed()" },
		},
		{
			name:   "message with a line break",
			change: func(s *spec) { s.Validations[0].Message = "too\nmany" },
			want:   []string{"FieldValueInvalid spec.validations[0].message"},
			detail: "message must not contain line breaks",
		},
		{
			name:   "blank message",
			change: func(s *spec) { s.Validations[0].Message = "  " },
			want:   []string{"FieldValueInvalid spec.validations[0].message"},
			detail: "message must be non-empty if specified",
		},
		{
			name:   "blank messageExpression",
			change: func(s *spec) { s.Validations[0].MessageExpression = "  " },
			want:   []string{"FieldValueInvalid spec.validations[0].messageExpression"},
			detail: "must be non-empty if specified",
		},
		{
			name:   "messageExpression not a string",
			change: func(s *spec) { s.Validations[0].MessageExpression = "variables.limit" },
			want:   []string{"FieldValueInvalid spec.validations[0].messageExpression"},
			detail: "must evaluate to string",
		},
		{
			name: "messageExpression cannot use the authorizer",
			change: func(s *spec) {
				s.Validations[0].MessageExpression = "string(authorizer.requestResource.check('update').allowed())"
			},
			want:   []string{"FieldValueInvalid spec.validations[0].messageExpression"},
			detail: "undeclared reference to 'authorizer'",
		},
		{
			name:   "reason Unauthorized",
			change: func(s *spec) { s.Validations[0].Reason = ptr(metav1.StatusReasonUnauthorized) },
			want:   []string{"FieldValueNotSupported spec.validations[0].reason"},
			detail: `supported values: "Forbidden", "Invalid", "RequestEntityTooLarge"`,
		},
		{
			name: "variable names",
			change: func(s *spec) {
				s.Variables = append(s.Variables,
					admissionregistrationv1.Variable{Name: "4ever", Expression: "true"},
					admissionregistrationv1.Variable{Name: "in", Expression: "true"},
					admissionregistrationv1.Variable{Name: " ", Expression: "true"})
			},
			want: []string{
				"FieldValueInvalid spec.variables[2].name",
				"FieldValueInvalid spec.variables[3].name",
				"FieldValueRequired spec.variables[4].name",
			},
			detail: "name is not a valid CEL identifier",
		},
		{
			name:   "variable without expression",
			change: func(s *spec) { s.Variables[1].Expression = "" },
			want:   []string{"FieldValueRequired spec.variables[1].expression", "FieldValueInvalid spec.validations[0].expression", "FieldValueInvalid spec.validations[0].messageExpression"},
			detail: "expression is not specified",
		},
		{
			name:   "variable does not compile",
			change: func(s *spec) { s.Variables[0].Expression = "114 + '514'" },
			want:   []string{"FieldValueInvalid spec.variables[0].expression"},
			detail: "compilation failed: ERROR: <input>:1:5: found no matching overload for '_+_' applied to '(int, string)'",
		},
		{
			name:   "variable uses a later variable",
			change: func(s *spec) { s.Variables[0].Expression = "variables.limit" },
			want:   []string{"FieldValueInvalid spec.variables[0].expression"},
			detail: "compilation failed",
		},
		{
			name:   "audit annotation key",
			change: func(s *spec) { s.AuditAnnotations[0].Key = "not a key" },
			want:   []string{"FieldValueInvalid spec.auditAnnotations[0].key"},
		},
		{
			name: "duplicate audit annotation keys",
			change: func(s *spec) {
				s.AuditAnnotations = append(s.AuditAnnotations, s.AuditAnnotations[0])
			},
			want: []string{"FieldValueDuplicate spec.auditAnnotations[1].key"},
		},
		{
			name:   "audit annotation without value",
			change: func(s *spec) { s.AuditAnnotations[0].ValueExpression = " " },
			want:   []string{"FieldValueRequired spec.auditAnnotations[0].valueExpression"},
			detail: "valueExpression is not specified",
		},
		{
			name:   "audit annotation value too long",
			change: func(s *spec) { s.AuditAnnotations[0].ValueExpression = "'" + strings.Repeat("x", 5*1024) + "'" },
			want:   []string{"FieldValueRequired spec.auditAnnotations[0].valueExpression"},
			detail: "must not exceed 5120 bytes in length",
		},
		{
			name:   "audit annotation value may be null",
			change: func(s *spec) { s.AuditAnnotations[0].ValueExpression = "null" },
		},
		{
			name:   "audit annotation value not a string",
			change: func(s *spec) { s.AuditAnnotations[0].ValueExpression = "object.spec.replicas > 1" },
			want:   []string{"FieldValueInvalid spec.auditAnnotations[0].valueExpression"},
			detail: "must evaluate to one of",
		},
		{
			name: "too many audit annotations",
			change: func(s *spec) {
				s.AuditAnnotations = nil
				for i := 0; i < 21; i++ {
					s.AuditAnnotations = append(s.AuditAnnotations, admissionregistrationv1.AuditAnnotation{Key: fmt.Sprintf("k%d", i), ValueExpression: "'v'"})
				}
			},
			want:   []string{"FieldValueInvalid spec.auditAnnotations"},
			detail: "must not have more than 20 auditAnnotations",
		},
	}
	r := resource(t, "validatingadmissionpolicies")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPolicy()
			tt.change(&p.Spec)
			if !tt.noDefault {
				r.Strategy.Default(p)
			}
			checkErrs(t, r.Strategy.Validate(p), tt.want, tt.detail)
		})
	}
}

func TestValidatePolicyAuditAnnotationNeedsName(t *testing.T) {
	p := validPolicy()
	p.Name = ""
	defaultPolicy(p)
	checkErrs(t, validatePolicy(p), []string{"FieldValueInvalid spec.auditAnnotations[0].key"}, "requires metadata.name be non-empty")
}

func TestValidatePolicyUpdate(t *testing.T) {
	r := resource(t, "validatingadmissionpolicies")
	// A match condition that does not compile stands for one stored by a
	// server whose CEL knew more.
	old := validPolicy()
	old.Spec.MatchConditions[0].Expression = "params.unknownFunction()"
	r.Strategy.Default(old)

	same := old.DeepCopy()
	same.Spec.Validations[0].Message = "changed"
	checkErrs(t, r.Strategy.ValidateUpdate(same, old), nil, "")

	newParamKind := old.DeepCopy()
	newParamKind.Spec.ParamKind.Kind = "OtherLimit"
	checkErrs(t, r.Strategy.ValidateUpdate(newParamKind, old), []string{"FieldValueInvalid spec.matchConditions[0].expression"}, "")

	// An invalid new object is refused on update as on create.
	bad := old.DeepCopy()
	bad.Spec.Validations[0].Expression = ""
	checkErrs(t, r.Strategy.ValidateUpdate(bad, old), []string{"FieldValueRequired spec.validations[0].expression"}, "")
}

func TestValidatePolicyStatusUpdate(t *testing.T) {
	now := metav1.Now()
	tests := []struct {
		name   string
		status admissionregistrationv1.ValidatingAdmissionPolicyStatus
		want   []string
		detail string
	}{
		{name: "empty"},
		{
			name: "valid",
			status: admissionregistrationv1.ValidatingAdmissionPolicyStatus{
				ObservedGeneration: 1,
				TypeChecking: &admissionregistrationv1.TypeChecking{ExpressionWarnings: []admissionregistrationv1.ExpressionWarning{
					{FieldRef: "spec.validations[0].expression", Warning: "no such field"},
				}},
				Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Checked", LastTransitionTime: now}},
			},
		},
		{
			name: "warning without text and fieldRef",
			status: admissionregistrationv1.ValidatingAdmissionPolicyStatus{TypeChecking: &admissionregistrationv1.TypeChecking{
				ExpressionWarnings: []admissionregistrationv1.ExpressionWarning{{}},
			}},
			want: []string{"FieldValueRequired status.typeChecking.expressionWarnings[0].warning", "FieldValueRequired status.typeChecking.expressionWarnings[0].fieldRef"},
		},
		{
			name: "bad fieldRef",
			status: admissionregistrationv1.ValidatingAdmissionPolicyStatus{TypeChecking: &admissionregistrationv1.TypeChecking{
				ExpressionWarnings: []admissionregistrationv1.ExpressionWarning{{FieldRef: "spec.validations[0", Warning: "w"}},
			}},
			want:   []string{"FieldValueInvalid status.typeChecking.expressionWarnings[0].fieldRef"},
			detail: "invalid JSONPath: ",
		},
		{
			name: "bad condition",
			status: admissionregistrationv1.ValidatingAdmissionPolicyStatus{
				Conditions: []metav1.Condition{{Type: "Ready", Status: "Maybe", Reason: "Checked", LastTransitionTime: now}},
			},
			want: []string{"FieldValueNotSupported status.conditions[0].status"},
		},
	}
	r := resource(t, "validatingadmissionpolicies")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := validPolicy()
			p := old.DeepCopy()
			p.Status = tt.status
			checkErrs(t, r.Strategy.ValidateStatusUpdate(p, old), tt.want, tt.detail)
		})
	}
}
