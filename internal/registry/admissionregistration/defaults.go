package admissionregistration

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The defaults are upstream's for v1. Unlike v1beta1, v1 does not default
// sideEffects or admissionReviewVersions: validation requires them. A
// binding's paramRef.parameterNotFoundAction has no default either.

func defaultMutatingWebhookConfiguration(obj runtime.Object) {
	c, ok := obj.(*admissionregistrationv1.MutatingWebhookConfiguration)
	if !ok {
		return
	}
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		setDefault(&w.FailurePolicy, admissionregistrationv1.Fail)
		setDefault(&w.MatchPolicy, admissionregistrationv1.Equivalent)
		setDefault(&w.NamespaceSelector, metav1.LabelSelector{})
		setDefault(&w.ObjectSelector, metav1.LabelSelector{})
		setDefault(&w.TimeoutSeconds, 10)
		setDefault(&w.ReinvocationPolicy, admissionregistrationv1.NeverReinvocationPolicy)
		defaultClientConfig(&w.ClientConfig)
		defaultRules(w.Rules)
	}
}

func defaultValidatingWebhookConfiguration(obj runtime.Object) {
	c, ok := obj.(*admissionregistrationv1.ValidatingWebhookConfiguration)
	if !ok {
		return
	}
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		setDefault(&w.FailurePolicy, admissionregistrationv1.Fail)
		setDefault(&w.MatchPolicy, admissionregistrationv1.Equivalent)
		setDefault(&w.NamespaceSelector, metav1.LabelSelector{})
		setDefault(&w.ObjectSelector, metav1.LabelSelector{})
		setDefault(&w.TimeoutSeconds, 10)
		defaultClientConfig(&w.ClientConfig)
		defaultRules(w.Rules)
	}
}

func defaultPolicy(obj runtime.Object) {
	p, ok := obj.(*admissionregistrationv1.ValidatingAdmissionPolicy)
	if !ok {
		return
	}
	setDefault(&p.Spec.FailurePolicy, admissionregistrationv1.Fail)
	defaultMatchResources(p.Spec.MatchConstraints)
}

func defaultBinding(obj runtime.Object) {
	b, ok := obj.(*admissionregistrationv1.ValidatingAdmissionPolicyBinding)
	if !ok {
		return
	}
	defaultMatchResources(b.Spec.MatchResources)
}

// defaultClientConfig gives a service reference upstream's port, 443.
func defaultClientConfig(cc *admissionregistrationv1.WebhookClientConfig) {
	if cc.Service != nil {
		setDefault(&cc.Service.Port, 443)
	}
}

// defaultRules scopes each rule to "*" (cluster and namespaced).
func defaultRules(rules []admissionregistrationv1.RuleWithOperations) {
	for i := range rules {
		setDefault(&rules[i].Scope, admissionregistrationv1.AllScopes)
	}
}

func defaultMatchResources(m *admissionregistrationv1.MatchResources) {
	if m == nil {
		return
	}
	setDefault(&m.MatchPolicy, admissionregistrationv1.Equivalent)
	setDefault(&m.NamespaceSelector, metav1.LabelSelector{})
	setDefault(&m.ObjectSelector, metav1.LabelSelector{})
	for i := range m.ResourceRules {
		setDefault(&m.ResourceRules[i].Scope, admissionregistrationv1.AllScopes)
	}
	for i := range m.ExcludeResourceRules {
		setDefault(&m.ExcludeResourceRules[i].Scope, admissionregistrationv1.AllScopes)
	}
}

// setDefault points *p at a copy of v when *p is nil.
func setDefault[T any](p **T, v T) {
	if *p == nil {
		*p = &v
	}
}
