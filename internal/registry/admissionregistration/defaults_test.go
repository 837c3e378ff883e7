package admissionregistration

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestDefaults(t *testing.T) {
	rule := admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}
	scoped := func(r admissionregistrationv1.RuleWithOperations, s admissionregistrationv1.ScopeType) admissionregistrationv1.RuleWithOperations {
		r.Scope = &s
		return r
	}
	named := func(r admissionregistrationv1.RuleWithOperations) admissionregistrationv1.NamedRuleWithOperations {
		return admissionregistrationv1.NamedRuleWithOperations{RuleWithOperations: r}
	}
	everything := &metav1.LabelSelector{}
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}

	tests := []struct {
		name  string
		in    runtime.Object
		want  runtime.Object
		apply func(runtime.Object)
	}{
		{
			name: "mutating webhook: all unset",
			in: &admissionregistrationv1.MutatingWebhookConfiguration{Webhooks: []admissionregistrationv1.MutatingWebhook{{
				Name:         "a.example.com",
				ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "ns", Name: "svc"}},
				Rules:        []admissionregistrationv1.RuleWithOperations{rule},
			}}},
			want: &admissionregistrationv1.MutatingWebhookConfiguration{Webhooks: []admissionregistrationv1.MutatingWebhook{{
				Name:               "a.example.com",
				ClientConfig:       admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "ns", Name: "svc", Port: ptr(int32(443))}},
				Rules:              []admissionregistrationv1.RuleWithOperations{scoped(rule, admissionregistrationv1.AllScopes)},
				FailurePolicy:      ptr(admissionregistrationv1.Fail),
				MatchPolicy:        ptr(admissionregistrationv1.Equivalent),
				NamespaceSelector:  everything,
				ObjectSelector:     everything,
				TimeoutSeconds:     ptr(int32(10)),
				ReinvocationPolicy: ptr(admissionregistrationv1.NeverReinvocationPolicy),
				// No default for sideEffects or admissionReviewVersions in v1.
			}}},
			apply: defaultMutatingWebhookConfiguration,
		},
		{
			name: "mutating webhook: all set, url",
			in: &admissionregistrationv1.MutatingWebhookConfiguration{Webhooks: []admissionregistrationv1.MutatingWebhook{{
				ClientConfig:       admissionregistrationv1.WebhookClientConfig{URL: ptr("https://example.com")},
				Rules:              []admissionregistrationv1.RuleWithOperations{scoped(rule, admissionregistrationv1.ClusterScope)},
				FailurePolicy:      ptr(admissionregistrationv1.Ignore),
				MatchPolicy:        ptr(admissionregistrationv1.Exact),
				NamespaceSelector:  selector,
				ObjectSelector:     selector,
				TimeoutSeconds:     ptr(int32(3)),
				ReinvocationPolicy: ptr(admissionregistrationv1.IfNeededReinvocationPolicy),
			}}},
			want: &admissionregistrationv1.MutatingWebhookConfiguration{Webhooks: []admissionregistrationv1.MutatingWebhook{{
				ClientConfig:       admissionregistrationv1.WebhookClientConfig{URL: ptr("https://example.com")},
				Rules:              []admissionregistrationv1.RuleWithOperations{scoped(rule, admissionregistrationv1.ClusterScope)},
				FailurePolicy:      ptr(admissionregistrationv1.Ignore),
				MatchPolicy:        ptr(admissionregistrationv1.Exact),
				NamespaceSelector:  selector,
				ObjectSelector:     selector,
				TimeoutSeconds:     ptr(int32(3)),
				ReinvocationPolicy: ptr(admissionregistrationv1.IfNeededReinvocationPolicy),
			}}},
			apply: defaultMutatingWebhookConfiguration,
		},
		{
			name: "validating webhook: all unset",
			in: &admissionregistrationv1.ValidatingWebhookConfiguration{Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Port: ptr(int32(8443))}},
				Rules:        []admissionregistrationv1.RuleWithOperations{rule},
			}}},
			want: &admissionregistrationv1.ValidatingWebhookConfiguration{Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				ClientConfig:      admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Port: ptr(int32(8443))}},
				Rules:             []admissionregistrationv1.RuleWithOperations{scoped(rule, admissionregistrationv1.AllScopes)},
				FailurePolicy:     ptr(admissionregistrationv1.Fail),
				MatchPolicy:       ptr(admissionregistrationv1.Equivalent),
				NamespaceSelector: everything,
				ObjectSelector:    everything,
				TimeoutSeconds:    ptr(int32(10)),
			}}},
			apply: defaultValidatingWebhookConfiguration,
		},
		{
			name: "policy",
			in: &admissionregistrationv1.ValidatingAdmissionPolicy{Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
				MatchConstraints: &admissionregistrationv1.MatchResources{
					ResourceRules:        []admissionregistrationv1.NamedRuleWithOperations{named(rule)},
					ExcludeResourceRules: []admissionregistrationv1.NamedRuleWithOperations{named(scoped(rule, admissionregistrationv1.NamespacedScope))},
				},
			}},
			want: &admissionregistrationv1.ValidatingAdmissionPolicy{Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
				FailurePolicy: ptr(admissionregistrationv1.Fail),
				MatchConstraints: &admissionregistrationv1.MatchResources{
					MatchPolicy:          ptr(admissionregistrationv1.Equivalent),
					NamespaceSelector:    everything,
					ObjectSelector:       everything,
					ResourceRules:        []admissionregistrationv1.NamedRuleWithOperations{named(scoped(rule, admissionregistrationv1.AllScopes))},
					ExcludeResourceRules: []admissionregistrationv1.NamedRuleWithOperations{named(scoped(rule, admissionregistrationv1.NamespacedScope))},
				},
			}},
			apply: defaultPolicy,
		},
		{
			name:  "policy without matchConstraints",
			in:    &admissionregistrationv1.ValidatingAdmissionPolicy{},
			want:  &admissionregistrationv1.ValidatingAdmissionPolicy{Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{FailurePolicy: ptr(admissionregistrationv1.Fail)}},
			apply: defaultPolicy,
		},
		{
			name: "binding: paramRef has no default",
			in: &admissionregistrationv1.ValidatingAdmissionPolicyBinding{Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				ParamRef:       &admissionregistrationv1.ParamRef{Name: "p"},
				MatchResources: &admissionregistrationv1.MatchResources{ObjectSelector: selector},
			}},
			want: &admissionregistrationv1.ValidatingAdmissionPolicyBinding{Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				ParamRef: &admissionregistrationv1.ParamRef{Name: "p"},
				MatchResources: &admissionregistrationv1.MatchResources{
					MatchPolicy:       ptr(admissionregistrationv1.Equivalent),
					NamespaceSelector: everything,
					ObjectSelector:    selector,
				},
			}},
			apply: defaultBinding,
		},
		{
			name:  "binding without matchResources",
			in:    &admissionregistrationv1.ValidatingAdmissionPolicyBinding{},
			want:  &admissionregistrationv1.ValidatingAdmissionPolicyBinding{},
			apply: defaultBinding,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.apply(tt.in)
			if diff := cmp.Diff(tt.want, tt.in); diff != "" {
				t.Errorf("defaulted (-want +got):\n%s", diff)
			}
		})
	}
}

// Defaults point each webhook at its own values: changing one must not
// change another's.
func TestDefaultsNotShared(t *testing.T) {
	c := &admissionregistrationv1.ValidatingWebhookConfiguration{Webhooks: make([]admissionregistrationv1.ValidatingWebhook, 2)}
	defaultValidatingWebhookConfiguration(c)
	*c.Webhooks[0].TimeoutSeconds = 1
	c.Webhooks[0].NamespaceSelector.MatchLabels = map[string]string{"a": "b"}
	if *c.Webhooks[1].TimeoutSeconds != 10 || c.Webhooks[1].NamespaceSelector.MatchLabels != nil {
		t.Errorf("defaults shared between webhooks: %+v", c.Webhooks[1])
	}
}
