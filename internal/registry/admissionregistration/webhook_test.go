package admissionregistration

import (
	"fmt"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func podRule() admissionregistrationv1.RuleWithOperations {
	return admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods", "pods/status"}},
	}
}

func validMutating() *admissionregistrationv1.MutatingWebhookConfiguration {
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-policy"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "pods.policy.example.com",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service: &admissionregistrationv1.ServiceReference{Namespace: "policy", Name: "webhook", Path: ptr("/mutate/pods")},
			},
			Rules:                   []admissionregistrationv1.RuleWithOperations{podRule()},
			SideEffects:             ptr(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1", "v1beta1"},
			MatchConditions: []admissionregistrationv1.MatchCondition{
				{Name: "not-kube-system", Expression: "request.namespace != 'kube-system'"},
				{Name: "example.com/may-exec", Expression: "authorizer.group('').resource('pods').check('exec').allowed()"},
			},
		}},
	}
}

func validValidating() *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-policy"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "pods.policy.example.com",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr("https://policy.example.com:8443/validate")},
			Rules:                   []admissionregistrationv1.RuleWithOperations{podRule()},
			SideEffects:             ptr(admissionregistrationv1.SideEffectClassNoneOnDryRun),
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
}

func TestValidateMutatingWebhookConfiguration(t *testing.T) {
	type hook = admissionregistrationv1.MutatingWebhook
	tests := []struct {
		name   string
		change func(w *hook)
		want   []string
		detail string
	}{
		{name: "valid", change: func(w *hook) {}},
		{name: "url", change: func(w *hook) {
			w.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: ptr("https://10.0.0.1/x")}
		}},
		{
			name:   "name with two labels",
			change: func(w *hook) { w.Name = "example.com" },
			want:   []string{"FieldValueInvalid webhooks[0].name"},
			detail: "should be a domain with at least three segments separated by dots",
		},
		{name: "no name", change: func(w *hook) { w.Name = "" }, want: []string{"FieldValueRequired webhooks[0].name"}},
		{name: "name not a subdomain", change: func(w *hook) { w.Name = "Pods.example.com" }, want: []string{"FieldValueInvalid webhooks[0].name"}},
		{
			name:   "no admissionReviewVersions",
			change: func(w *hook) { w.AdmissionReviewVersions = nil },
			want:   []string{"FieldValueRequired webhooks[0].admissionReviewVersions"},
			detail: "must specify one of v1, v1beta1",
		},
		{
			name:   "unknown admissionReviewVersion",
			change: func(w *hook) { w.AdmissionReviewVersions = []string{"v2"} },
			want:   []string{"FieldValueInvalid webhooks[0].admissionReviewVersions"},
			detail: "must include at least one of v1, v1beta1",
		},
		{
			name:   "duplicate and malformed admissionReviewVersions",
			change: func(w *hook) { w.AdmissionReviewVersions = []string{"v1", "v1", "V2"} },
			want:   []string{"FieldValueInvalid webhooks[0].admissionReviewVersions[1]", "FieldValueInvalid webhooks[0].admissionReviewVersions[2]"},
			detail: "duplicate version",
		},
		{
			name:   "no sideEffects",
			change: func(w *hook) { w.SideEffects = nil },
			want:   []string{"FieldValueRequired webhooks[0].sideEffects"},
			detail: "must specify one of None, NoneOnDryRun",
		},
		{
			name:   "sideEffects Some",
			change: func(w *hook) { w.SideEffects = ptr(admissionregistrationv1.SideEffectClassSome) },
			want:   []string{"FieldValueNotSupported webhooks[0].sideEffects"},
			detail: `supported values: "None", "NoneOnDryRun"`,
		},
		{
			name:   "timeout too long",
			change: func(w *hook) { w.TimeoutSeconds = ptr(int32(31)) },
			want:   []string{"FieldValueInvalid webhooks[0].timeoutSeconds"},
			detail: "the timeout value must be between 1 and 30 seconds",
		},
		{name: "timeout zero", change: func(w *hook) { w.TimeoutSeconds = ptr(int32(0)) }, want: []string{"FieldValueInvalid webhooks[0].timeoutSeconds"}},
		{
			name:   "bad failurePolicy",
			change: func(w *hook) { w.FailurePolicy = ptr(admissionregistrationv1.FailurePolicyType("Maybe")) },
			want:   []string{"FieldValueNotSupported webhooks[0].failurePolicy"},
			detail: `supported values: "Fail", "Ignore"`,
		},
		{
			name:   "bad matchPolicy",
			change: func(w *hook) { w.MatchPolicy = ptr(admissionregistrationv1.MatchPolicyType("Close")) },
			want:   []string{"FieldValueNotSupported webhooks[0].matchPolicy"},
		},
		{
			name:   "bad reinvocationPolicy",
			change: func(w *hook) { w.ReinvocationPolicy = ptr(admissionregistrationv1.ReinvocationPolicyType("Always")) },
			want:   []string{"FieldValueNotSupported webhooks[0].reinvocationPolicy"},
			detail: `supported values: "IfNeeded", "Never"`,
		},
		{
			name: "bad selectors",
			change: func(w *hook) {
				w.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}
				w.ObjectSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"a": "not a value"}}
			},
			want: []string{"FieldValueInvalid webhooks[0].namespaceSelector.matchExpressions[0].operator", "FieldValueInvalid webhooks[0].objectSelector.matchLabels"},
		},
		{
			name:   "no clientConfig",
			change: func(w *hook) { w.ClientConfig = admissionregistrationv1.WebhookClientConfig{} },
			want:   []string{"FieldValueRequired webhooks[0].clientConfig"},
			detail: "exactly one of url or service is required",
		},
		{
			name:   "url and service",
			change: func(w *hook) { w.ClientConfig.URL = ptr("https://example.com") },
			want:   []string{"FieldValueRequired webhooks[0].clientConfig"},
		},
		{
			name: "http url",
			change: func(w *hook) {
				w.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: ptr("http://example.com")}
			},
			want:   []string{"FieldValueInvalid webhooks[0].clientConfig.url"},
			detail: "'https' is the only allowed URL scheme; desired format: https://host[/path]",
		},
		{
			name: "url with user, query and fragment",
			change: func(w *hook) {
				w.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: ptr("https://me@example.com/x?a=b#c")}
			},
			want: []string{"FieldValueInvalid webhooks[0].clientConfig.url", "FieldValueInvalid webhooks[0].clientConfig.url", "FieldValueInvalid webhooks[0].clientConfig.url"},
		},
		{
			name:   "url without host",
			change: func(w *hook) { w.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: ptr("https:///x")} },
			want:   []string{"FieldValueInvalid webhooks[0].clientConfig.url"},
			detail: "host must be specified",
		},
		{
			name: "unparsable url",
			change: func(w *hook) {
				w.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: ptr("https://exa mple.com")}
			},
			want:   []string{"FieldValueRequired webhooks[0].clientConfig.url"},
			detail: "url must be a valid URL",
		},
		{
			name: "service without name and namespace",
			change: func(w *hook) {
				w.ClientConfig.Service = &admissionregistrationv1.ServiceReference{}
			},
			want: []string{"FieldValueRequired webhooks[0].clientConfig.service.name", "FieldValueRequired webhooks[0].clientConfig.service.namespace"},
		},
		{
			name:   "service port",
			change: func(w *hook) { w.ClientConfig.Service.Port = ptr(int32(70000)) },
			want:   []string{"FieldValueInvalid webhooks[0].clientConfig.service.port"},
			detail: "port is not valid: must be between 1 and 65535, inclusive",
		},
		{
			name:   "service path without slash",
			change: func(w *hook) { w.ClientConfig.Service.Path = ptr("mutate") },
			want:   []string{"FieldValueInvalid webhooks[0].clientConfig.service.path"},
			detail: "must start with a '/'",
		},
		{
			name:   "service path empty segment",
			change: func(w *hook) { w.ClientConfig.Service.Path = ptr("/a//b/") },
			want:   []string{"FieldValueInvalid webhooks[0].clientConfig.service.path"},
			detail: "segment[1] may not be empty",
		},
		{
			name:   "service path double slash",
			change: func(w *hook) { w.ClientConfig.Service.Path = ptr("//") },
			want:   []string{"FieldValueInvalid webhooks[0].clientConfig.service.path"},
			detail: "segment[0] may not be empty",
		},
		{
			name:   "service path not a subdomain",
			change: func(w *hook) { w.ClientConfig.Service.Path = ptr("/Mutate") },
			want:   []string{"FieldValueInvalid webhooks[0].clientConfig.service.path"},
			detail: "segment[0]: a lowercase RFC 1123 subdomain",
		},
		{name: "service path root", change: func(w *hook) { w.ClientConfig.Service.Path = ptr("/") }},
		{
			name:   "rule without operations",
			change: func(w *hook) { w.Rules[0].Operations = nil },
			want:   []string{"FieldValueRequired webhooks[0].rules[0].operations"},
		},
		{
			name: "rule with * and another operation",
			change: func(w *hook) {
				w.Rules[0].Operations = []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll, admissionregistrationv1.Create}
			},
			want:   []string{"FieldValueInvalid webhooks[0].rules[0].operations"},
			detail: "if '*' is present, must not specify other operations",
		},
		{
			name:   "rule with unknown operation",
			change: func(w *hook) { w.Rules[0].Operations = []admissionregistrationv1.OperationType{"PATCH"} },
			want:   []string{"FieldValueNotSupported webhooks[0].rules[0].operations[0]"},
			detail: `supported values: "*", "CONNECT", "CREATE", "DELETE", "UPDATE"`,
		},
		{
			name: "rule without groups, versions and resources",
			change: func(w *hook) {
				w.Rules[0].Rule = admissionregistrationv1.Rule{}
			},
			want: []string{"FieldValueRequired webhooks[0].rules[0].apiGroups", "FieldValueRequired webhooks[0].rules[0].apiVersions", "FieldValueRequired webhooks[0].rules[0].resources"},
		},
		{
			name: "rule with wildcards and more",
			change: func(w *hook) {
				w.Rules[0].APIGroups = []string{"*", "apps"}
				w.Rules[0].APIVersions = []string{"*", ""}
			},
			want: []string{"FieldValueInvalid webhooks[0].rules[0].apiGroups", "FieldValueInvalid webhooks[0].rules[0].apiVersions", "FieldValueRequired webhooks[0].rules[0].apiVersions[1]"},
		},
		{
			name:   "resources */* and more",
			change: func(w *hook) { w.Rules[0].Resources = []string{"*/*", "pods"} },
			want:   []string{"FieldValueInvalid webhooks[0].rules[0].resources"},
			detail: "if '*/*' is present, must not specify other resources",
		},
		{
			name:   "resources * then a resource",
			change: func(w *hook) { w.Rules[0].Resources = []string{"*", "pods"} },
			want:   []string{"FieldValueInvalid webhooks[0].rules[0].resources"},
			detail: "if '*' is present, must not specify other resources without subresources",
		},
		// Upstream's order dependence, kept.
		{name: "resources a resource then *", change: func(w *hook) { w.Rules[0].Resources = []string{"pods", "*"} }},
		{
			name:   "resources x/* then x/y",
			change: func(w *hook) { w.Rules[0].Resources = []string{"pods/*", "pods/log"} },
			want:   []string{"FieldValueInvalid webhooks[0].rules[0].resources[1]"},
			detail: "if 'pods/*' is present, must not specify pods/log",
		},
		{
			name:   "resources */y then x/y",
			change: func(w *hook) { w.Rules[0].Resources = []string{"*/status", "pods/status"} },
			want:   []string{"FieldValueInvalid webhooks[0].rules[0].resources[1]"},
			detail: "if '*/status' is present, must not specify pods/status",
		},
		{
			name:   "empty resource",
			change: func(w *hook) { w.Rules[0].Resources = []string{"pods", ""} },
			want:   []string{"FieldValueRequired webhooks[0].rules[0].resources[1]"},
		},
		{
			name:   "bad scope",
			change: func(w *hook) { w.Rules[0].Scope = ptr(admissionregistrationv1.ScopeType("Global")) },
			want:   []string{"FieldValueNotSupported webhooks[0].rules[0].scope"},
			detail: `supported values: "*", "Cluster", "Namespaced"`,
		},
		{
			name:   "match condition does not compile",
			change: func(w *hook) { w.MatchConditions[0].Expression = "object.metadata.name ==" },
			want:   []string{"FieldValueInvalid webhooks[0].matchConditions[0].expression"},
			detail: "compilation failed: ERROR: <input>:1:",
		},
		{
			name:   "match condition not a bool",
			change: func(w *hook) { w.MatchConditions[0].Expression = "1 + 1" },
			want:   []string{"FieldValueInvalid webhooks[0].matchConditions[0].expression"},
			detail: "must evaluate to bool",
		},
		{
			name:   "match condition with params",
			change: func(w *hook) { w.MatchConditions[0].Expression = "params != null" },
			want:   []string{"FieldValueInvalid webhooks[0].matchConditions[0].expression"},
			detail: "undeclared reference to 'params'",
		},
		{
			name:   "match condition without expression",
			change: func(w *hook) { w.MatchConditions[0].Expression = "  " },
			want:   []string{"FieldValueRequired webhooks[0].matchConditions[0].expression"},
		},
		{
			name: "match condition names",
			change: func(w *hook) {
				w.MatchConditions[0].Name = "-bad"
				w.MatchConditions[1].Name = "-bad"
			},
			want: []string{"FieldValueInvalid webhooks[0].matchConditions[0].name", "FieldValueInvalid webhooks[0].matchConditions[1].name", "FieldValueDuplicate webhooks[0].matchConditions[1].name"},
		},
		{
			name:   "match condition without name",
			change: func(w *hook) { w.MatchConditions[1].Name = "" },
			want:   []string{"FieldValueRequired webhooks[0].matchConditions[1].name"},
		},
		{
			name: "too many match conditions",
			change: func(w *hook) {
				w.MatchConditions = nil
				for i := 0; i < 65; i++ {
					w.MatchConditions = append(w.MatchConditions, admissionregistrationv1.MatchCondition{Name: fmt.Sprintf("c%d", i), Expression: "true"})
				}
			},
			want:   []string{"FieldValueTooMany webhooks[0].matchConditions"},
			detail: "must have at most 64 items",
		},
	}
	r := resource(t, "mutatingwebhookconfigurations")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validMutating()
			tt.change(&c.Webhooks[0])
			r.Strategy.Default(c)
			checkErrs(t, r.Strategy.Validate(c), tt.want, tt.detail)
			// An update from a valid object checks the same.
			checkErrs(t, r.Strategy.ValidateUpdate(c, defaulted(t, validMutating())), tt.want, tt.detail)
		})
	}
}

func defaulted(t *testing.T, c *admissionregistrationv1.MutatingWebhookConfiguration) *admissionregistrationv1.MutatingWebhookConfiguration {
	t.Helper()
	defaultMutatingWebhookConfiguration(c)
	return c
}

func TestValidateValidatingWebhookConfiguration(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *admissionregistrationv1.ValidatingWebhookConfiguration)
		want   []string
		detail string
	}{
		{name: "valid", change: func(*admissionregistrationv1.ValidatingWebhookConfiguration) {}},
		{name: "no webhooks", change: func(c *admissionregistrationv1.ValidatingWebhookConfiguration) { c.Webhooks = nil }},
		{
			name: "duplicate names",
			change: func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
				c.Webhooks = append(c.Webhooks, c.Webhooks[0], c.Webhooks[0])
			},
			want: []string{"FieldValueDuplicate webhooks[1].name", "FieldValueDuplicate webhooks[2].name"},
		},
		{
			name: "second webhook's paths",
			change: func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
				w := c.Webhooks[0]
				w.Name = "other.example.com"
				w.SideEffects = nil
				c.Webhooks = append(c.Webhooks, w)
			},
			want: []string{"FieldValueRequired webhooks[1].sideEffects"},
		},
		{
			name: "match condition",
			change: func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
				c.Webhooks[0].MatchConditions = []admissionregistrationv1.MatchCondition{{Name: "x", Expression: "object."}}
			},
			want:   []string{"FieldValueInvalid webhooks[0].matchConditions[0].expression"},
			detail: "compilation failed",
		},
	}
	r := resource(t, "validatingwebhookconfigurations")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validValidating()
			tt.change(c)
			r.Strategy.Default(c)
			checkErrs(t, r.Strategy.Validate(c), tt.want, tt.detail)
		})
	}
}

// An update keeps accepting what the stored object already had, as
// upstream: objects stored through v1beta1 or by older servers can still
// be changed.
func TestValidateWebhookConfigurationUpdateRatchets(t *testing.T) {
	type hook = admissionregistrationv1.MutatingWebhook
	tests := []struct {
		name       string
		old, new   func(w *hook)
		wantCreate []string
		wantUpdate []string
	}{
		{
			name:       "sideEffects Unknown kept",
			old:        func(w *hook) { w.SideEffects = ptr(admissionregistrationv1.SideEffectClassUnknown) },
			new:        func(w *hook) { w.SideEffects = ptr(admissionregistrationv1.SideEffectClassUnknown) },
			wantCreate: []string{"FieldValueNotSupported webhooks[0].sideEffects"},
		},
		{
			name:       "sideEffects Some after None",
			old:        func(w *hook) {},
			new:        func(w *hook) { w.SideEffects = ptr(admissionregistrationv1.SideEffectClassSome) },
			wantCreate: []string{"FieldValueNotSupported webhooks[0].sideEffects"},
			wantUpdate: []string{"FieldValueNotSupported webhooks[0].sideEffects"},
		},
		{
			name:       "unknown review version kept",
			old:        func(w *hook) { w.AdmissionReviewVersions = []string{"v0"} },
			new:        func(w *hook) { w.AdmissionReviewVersions = []string{"v0"} },
			wantCreate: []string{"FieldValueInvalid webhooks[0].admissionReviewVersions"},
		},
		{
			name: "invalid label value kept",
			old: func(w *hook) {
				w.ObjectSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "In", Values: []string{"not valid"}}}}
			},
			new: func(w *hook) {
				w.ObjectSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "In", Values: []string{"still not valid"}}}}
			},
			wantCreate: []string{"FieldValueInvalid webhooks[0].objectSelector.matchExpressions[0].values[0]"},
		},
		{
			name:       "unchanged match conditions are not compiled",
			old:        func(w *hook) { w.MatchConditions[0].Expression = "request.unknownFunction()" },
			new:        func(w *hook) { w.MatchConditions[0].Expression = "request.unknownFunction()" },
			wantCreate: []string{"FieldValueInvalid webhooks[0].matchConditions[0].expression"},
		},
		{
			name:       "changed match conditions are",
			old:        func(w *hook) { w.MatchConditions[0].Expression = "request.unknownFunction()" },
			new:        func(w *hook) { w.MatchConditions[0].Expression = "request.otherUnknownFunction()" },
			wantCreate: []string{"FieldValueInvalid webhooks[0].matchConditions[0].expression"},
			wantUpdate: []string{"FieldValueInvalid webhooks[0].matchConditions[0].expression"},
		},
	}
	r := resource(t, "mutatingwebhookconfigurations")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, c := validMutating(), validMutating()
			tt.old(&old.Webhooks[0])
			tt.new(&c.Webhooks[0])
			r.Strategy.Default(old)
			r.Strategy.Default(c)
			checkErrs(t, r.Strategy.Validate(c), tt.wantCreate, "")
			checkErrs(t, r.Strategy.ValidateUpdate(c, old), tt.wantUpdate, "")
		})
	}

	t.Run("duplicate names kept", func(t *testing.T) {
		old := validMutating()
		old.Webhooks = append(old.Webhooks, old.Webhooks[0])
		c := old.DeepCopy()
		c.Webhooks[1].TimeoutSeconds = ptr(int32(3))
		r.Strategy.Default(old)
		r.Strategy.Default(c)
		checkErrs(t, r.Strategy.Validate(c), []string{"FieldValueDuplicate webhooks[1].name"}, "")
		checkErrs(t, r.Strategy.ValidateUpdate(c, old), nil, "")
	})
}
