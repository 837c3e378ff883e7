package admissionregistration

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var (
	// acceptedReviewVersions are the AdmissionReview versions skiff can
	// send; a webhook must accept at least one.
	acceptedReviewVersions = []string{"v1", "v1beta1"}
	// noSideEffects are the side-effect classes v1 accepts; the other two
	// (Unknown, Some) survive only in objects stored through v1beta1.
	noSideEffects  = []string{string(admissionregistrationv1.SideEffectClassNone), string(admissionregistrationv1.SideEffectClassNoneOnDryRun)}
	allSideEffects = []string{
		string(admissionregistrationv1.SideEffectClassNone),
		string(admissionregistrationv1.SideEffectClassNoneOnDryRun),
		string(admissionregistrationv1.SideEffectClassSome),
		string(admissionregistrationv1.SideEffectClassUnknown),
	}
	supportedReinvocationPolicies = []string{
		string(admissionregistrationv1.IfNeededReinvocationPolicy),
		string(admissionregistrationv1.NeverReinvocationPolicy),
	}
)

// webhook is what a mutating and a validating webhook share, so that one
// function validates both. mutating adds reinvocationPolicy.
type webhook struct {
	mutating                bool
	name                    string
	clientConfig            admissionregistrationv1.WebhookClientConfig
	rules                   []admissionregistrationv1.RuleWithOperations
	failurePolicy           *admissionregistrationv1.FailurePolicyType
	matchPolicy             *admissionregistrationv1.MatchPolicyType
	namespaceSelector       *metav1.LabelSelector
	objectSelector          *metav1.LabelSelector
	sideEffects             *admissionregistrationv1.SideEffectClass
	timeoutSeconds          *int32
	admissionReviewVersions []string
	reinvocationPolicy      *admissionregistrationv1.ReinvocationPolicyType
	matchConditions         []admissionregistrationv1.MatchCondition
}

func mutatingWebhooks(c *admissionregistrationv1.MutatingWebhookConfiguration) []webhook {
	out := make([]webhook, len(c.Webhooks))
	for i, w := range c.Webhooks {
		out[i] = webhook{
			mutating: true, name: w.Name, clientConfig: w.ClientConfig, rules: w.Rules,
			failurePolicy: w.FailurePolicy, matchPolicy: w.MatchPolicy,
			namespaceSelector: w.NamespaceSelector, objectSelector: w.ObjectSelector,
			sideEffects: w.SideEffects, timeoutSeconds: w.TimeoutSeconds,
			admissionReviewVersions: w.AdmissionReviewVersions, reinvocationPolicy: w.ReinvocationPolicy,
			matchConditions: w.MatchConditions,
		}
	}
	return out
}

func validatingWebhooks(c *admissionregistrationv1.ValidatingWebhookConfiguration) []webhook {
	out := make([]webhook, len(c.Webhooks))
	for i, w := range c.Webhooks {
		out[i] = webhook{
			name: w.Name, clientConfig: w.ClientConfig, rules: w.Rules,
			failurePolicy: w.FailurePolicy, matchPolicy: w.MatchPolicy,
			namespaceSelector: w.NamespaceSelector, objectSelector: w.ObjectSelector,
			sideEffects: w.SideEffects, timeoutSeconds: w.TimeoutSeconds,
			admissionReviewVersions: w.AdmissionReviewVersions, matchConditions: w.MatchConditions,
		}
	}
	return out
}

func validateMutatingWebhookConfiguration(obj runtime.Object) field.ErrorList {
	c, ok := obj.(*admissionregistrationv1.MutatingWebhookConfiguration)
	if !ok {
		return nil
	}
	return validateWebhooks(mutatingWebhooks(c), createWebhookOptions())
}

func validateMutatingWebhookConfigurationUpdate(obj, old runtime.Object) field.ErrorList {
	c, ok1 := obj.(*admissionregistrationv1.MutatingWebhookConfiguration)
	o, ok2 := old.(*admissionregistrationv1.MutatingWebhookConfiguration)
	if !ok1 || !ok2 {
		return nil
	}
	hooks := mutatingWebhooks(c)
	return validateWebhooks(hooks, updateWebhookOptions(hooks, mutatingWebhooks(o)))
}

func validateValidatingWebhookConfiguration(obj runtime.Object) field.ErrorList {
	c, ok := obj.(*admissionregistrationv1.ValidatingWebhookConfiguration)
	if !ok {
		return nil
	}
	return validateWebhooks(validatingWebhooks(c), createWebhookOptions())
}

func validateValidatingWebhookConfigurationUpdate(obj, old runtime.Object) field.ErrorList {
	c, ok1 := obj.(*admissionregistrationv1.ValidatingWebhookConfiguration)
	o, ok2 := old.(*admissionregistrationv1.ValidatingWebhookConfiguration)
	if !ok1 || !ok2 {
		return nil
	}
	hooks := validatingWebhooks(c)
	return validateWebhooks(hooks, updateWebhookOptions(hooks, validatingWebhooks(o)))
}

// webhookOptions are the checks an update relaxes when the stored object
// already broke them, as upstream: an object stored through v1beta1, or
// before a check existed, can still be changed.
type webhookOptions struct {
	requireNoSideEffects   bool
	requireKnownReview     bool
	requireUniqueNames     bool
	allowInvalidLabelValue bool
	skipMatchConditions    bool
	storedMatchConditions  sets.Set[string]
}

func createWebhookOptions() webhookOptions {
	return webhookOptions{requireNoSideEffects: true, requireKnownReview: true, requireUniqueNames: true}
}

func updateWebhookOptions(hooks, old []webhook) webhookOptions {
	opts := webhookOptions{
		requireNoSideEffects: true,
		requireKnownReview:   true,
		requireUniqueNames:   true,
		// Unchanged match conditions are not compiled again.
		skipMatchConditions:   len(hooks) == len(old),
		storedMatchConditions: sets.New[string](),
	}
	names := sets.New[string]()
	for i, h := range old {
		if h.sideEffects == nil || !slices.Contains(noSideEffects, string(*h.sideEffects)) {
			opts.requireNoSideEffects = false
		}
		if len(h.admissionReviewVersions) > 0 && !slices.ContainsFunc(h.admissionReviewVersions, isAcceptedReviewVersion) {
			opts.requireKnownReview = false
		}
		if names.Has(h.name) {
			opts.requireUniqueNames = false
		}
		names.Insert(h.name)
		if hasInvalidLabelValue(h.namespaceSelector) || hasInvalidLabelValue(h.objectSelector) {
			opts.allowInvalidLabelValue = true
		}
		if opts.skipMatchConditions && !apiequality.Semantic.DeepEqual(hooks[i].matchConditions, h.matchConditions) {
			opts.skipMatchConditions = false
		}
		for _, mc := range h.matchConditions {
			opts.storedMatchConditions.Insert(mc.Expression)
		}
	}
	return opts
}

func isAcceptedReviewVersion(v string) bool { return slices.Contains(acceptedReviewVersions, v) }

func hasInvalidLabelValue(s *metav1.LabelSelector) bool {
	return s != nil && len(metav1validation.ValidateLabelSelector(s, metav1validation.LabelSelectorValidationOptions{}, nil)) > 0
}

func validateWebhooks(hooks []webhook, opts webhookOptions) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	for i := range hooks {
		h := &hooks[i]
		p := field.NewPath("webhooks").Index(i)
		errs = append(errs, validateWebhook(h, opts, p)...)
		errs = append(errs, validateAdmissionReviewVersions(h.admissionReviewVersions, opts.requireKnownReview, p.Child("admissionReviewVersions"))...)
		if opts.requireUniqueNames && h.name != "" {
			if names.Has(h.name) {
				errs = append(errs, field.Duplicate(p.Child("name"), h.name))
			}
			names.Insert(h.name)
		}
	}
	return errs
}

func validateWebhook(h *webhook, opts webhookOptions, p *field.Path) field.ErrorList {
	// A webhook's name is a domain of at least three labels
	// ("pod-policy.example.com"), so that names from different authors do
	// not collide.
	errs := validation.IsFullyQualifiedName(p.Child("name"), h.name)
	for i := range h.rules {
		errs = append(errs, validateRuleWithOperations(&h.rules[i], p.Child("rules").Index(i))...)
	}
	if h.failurePolicy != nil && !slices.Contains(supportedFailurePolicies, string(*h.failurePolicy)) {
		errs = append(errs, field.NotSupported(p.Child("failurePolicy"), *h.failurePolicy, supportedFailurePolicies))
	}
	if h.matchPolicy != nil && !slices.Contains(supportedMatchPolicies, string(*h.matchPolicy)) {
		errs = append(errs, field.NotSupported(p.Child("matchPolicy"), *h.matchPolicy, supportedMatchPolicies))
	}
	sideEffects := allSideEffects
	if opts.requireNoSideEffects {
		sideEffects = noSideEffects
	}
	switch {
	case h.sideEffects == nil:
		errs = append(errs, field.Required(p.Child("sideEffects"), "must specify one of "+strings.Join(sideEffects, ", ")))
	case !slices.Contains(sideEffects, string(*h.sideEffects)):
		errs = append(errs, field.NotSupported(p.Child("sideEffects"), *h.sideEffects, sideEffects))
	}
	if t := h.timeoutSeconds; t != nil && (*t < 1 || *t > 30) {
		errs = append(errs, field.Invalid(p.Child("timeoutSeconds"), *t, "the timeout value must be between 1 and 30 seconds"))
	}
	selOpts := metav1validation.LabelSelectorValidationOptions{AllowInvalidLabelValueInSelector: opts.allowInvalidLabelValue}
	if h.namespaceSelector != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(h.namespaceSelector, selOpts, p.Child("namespaceSelector"))...)
	}
	if h.objectSelector != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(h.objectSelector, selOpts, p.Child("objectSelector"))...)
	}
	if h.mutating && h.reinvocationPolicy != nil && !slices.Contains(supportedReinvocationPolicies, string(*h.reinvocationPolicy)) {
		errs = append(errs, field.NotSupported(p.Child("reinvocationPolicy"), *h.reinvocationPolicy, supportedReinvocationPolicies))
	}
	cc, cp := h.clientConfig, p.Child("clientConfig")
	switch {
	case (cc.URL == nil) == (cc.Service == nil):
		errs = append(errs, field.Required(cp, "exactly one of url or service is required"))
	case cc.URL != nil:
		errs = append(errs, validateWebhookURL(cp.Child("url"), *cc.URL)...)
	default:
		errs = append(errs, validateWebhookService(cp.Child("service"), cc.Service)...)
	}
	if !opts.skipMatchConditions {
		errs = append(errs, validateMatchConditions(h.matchConditions, false, opts.storedMatchConditions, p.Child("matchConditions"))...)
	}
	return errs
}

// validateAdmissionReviewVersions: the versions of AdmissionReview the
// webhook accepts, in its order of preference; unique, and at least one
// the server can send.
func validateAdmissionReviewVersions(versions []string, requireKnown bool, p *field.Path) field.ErrorList {
	accepted := strings.Join(acceptedReviewVersions, ", ")
	if len(versions) == 0 {
		return field.ErrorList{field.Required(p, "must specify one of "+accepted)}
	}
	var errs field.ErrorList
	seen := sets.New[string]()
	for i, v := range versions {
		if seen.Has(v) {
			errs = append(errs, field.Invalid(p.Index(i), v, "duplicate version"))
			continue
		}
		seen.Insert(v)
		for _, msg := range validation.IsDNS1035Label(v) {
			errs = append(errs, field.Invalid(p.Index(i), v, msg))
		}
	}
	if requireKnown && !slices.ContainsFunc(versions, isAcceptedReviewVersion) {
		errs = append(errs, field.Invalid(p, versions, "must include at least one of "+accepted))
	}
	return errs
}

// validateWebhookURL: an https URL with a host, without user information,
// fragment or query.
func validateWebhookURL(p *field.Path, raw string) field.ErrorList {
	const form = "; desired format: https://host[/path]"
	u, err := url.Parse(raw)
	if err != nil {
		return field.ErrorList{field.Required(p, "url must be a valid URL: "+err.Error()+form)}
	}
	var errs field.ErrorList
	if u.Scheme != "https" {
		errs = append(errs, field.Invalid(p, u.Scheme, "'https' is the only allowed URL scheme"+form))
	}
	if u.Host == "" {
		errs = append(errs, field.Invalid(p, u.Host, "host must be specified"+form))
	}
	if u.User != nil {
		errs = append(errs, field.Invalid(p, u.User.String(), "user information is not permitted in the URL"))
	}
	if u.Fragment != "" {
		errs = append(errs, field.Invalid(p, u.Fragment, "fragments are not permitted in the URL"))
	}
	if u.RawQuery != "" {
		errs = append(errs, field.Invalid(p, u.RawQuery, "query parameters are not permitted in the URL"))
	}
	return errs
}

// validateWebhookService: a service named in its namespace, a valid port
// (443 when unset, which the defaults fill in) and a path of DNS-subdomain
// segments starting with '/'.
func validateWebhookService(p *field.Path, svc *admissionregistrationv1.ServiceReference) field.ErrorList {
	var errs field.ErrorList
	if svc.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	if svc.Namespace == "" {
		errs = append(errs, field.Required(p.Child("namespace"), ""))
	}
	port := int32(443)
	if svc.Port != nil {
		port = *svc.Port
	}
	if msgs := validation.IsValidPortNum(int(port)); len(msgs) > 0 {
		errs = append(errs, field.Invalid(p.Child("port"), port, "port is not valid: "+strings.Join(msgs, ", ")))
	}
	if svc.Path == nil {
		return errs
	}
	urlPath, pp := *svc.Path, p.Child("path")
	switch urlPath {
	case "", "/":
		return errs
	case "//":
		return append(errs, field.Invalid(pp, urlPath, "segment[0] may not be empty"))
	}
	if !strings.HasPrefix(urlPath, "/") {
		errs = append(errs, field.Invalid(pp, urlPath, "must start with a '/'"))
	}
	// As upstream, the first character is dropped whether it is a '/' or
	// not, and so is one trailing '/'.
	segments := strings.Split(strings.TrimSuffix(urlPath[1:], "/"), "/")
	for i, seg := range segments {
		if seg == "" {
			errs = append(errs, field.Invalid(pp, urlPath, fmt.Sprintf("segment[%d] may not be empty", i)))
			continue
		}
		for _, msg := range validation.IsDNS1123Subdomain(seg) {
			errs = append(errs, field.Invalid(pp, urlPath, fmt.Sprintf("segment[%d]: %v", i, msg)))
		}
	}
	return errs
}
