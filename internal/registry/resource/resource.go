// Package resource holds the registry of the resource.k8s.io API group,
// dynamic resource allocation (DRA): device classes, resource claims and
// their templates, the resource slices drivers publish, and device taint
// rules, served in v1 with upstream's defaulting, validation and
// `kubectl get` columns.
//
// skiff serves these objects; it does not act on them. The scheduler does
// not allocate devices to claims, no controller creates claims from a
// pod's templates or evicts pods for a NoExecute device taint, and the
// kubelet runs no DRA driver plugins: a pod that names a claim is
// scheduled as if it did not (docs/compatibility.md). CEL selector
// expressions are checked for presence and size, not compiled.
package resource

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// Resources returns the descriptors of resource.k8s.io/v1.
func Resources() []*registry.Resource {
	return []*registry.Resource{deviceClasses(), resourceClaims(), resourceClaimTemplates(), resourceSlices(), deviceTaintRules()}
}

// driverName checks a DRA driver name, which follows a CSI driver's
// rules: a lower-case DNS subdomain of at most 63 characters.
func driverName(name string, p *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	var errs field.ErrorList
	if len(name) > resourcev1.DriverNameMaxLength {
		errs = append(errs, field.TooLong(p, "", resourcev1.DriverNameMaxLength))
	}
	for _, msg := range validation.IsDNS1123Subdomain(strings.ToLower(name)) {
		errs = append(errs, field.Invalid(p, name, msg))
	}
	return errs
}

// poolName: one or more DNS subdomains joined by "/".
func poolName(name string, p *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	var errs field.ErrorList
	if len(name) > resourcev1.PoolNameMaxLength {
		errs = append(errs, field.TooLong(p, "", resourcev1.PoolNameMaxLength))
	}
	for _, part := range strings.Split(name, "/") {
		errs = append(errs, dns1123Subdomain(part, p)...)
	}
	return errs
}

func dns1123Subdomain(v string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(v) {
		errs = append(errs, field.Invalid(p, v, msg))
	}
	return errs
}

func dns1123Label(v string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(v) {
		errs = append(errs, field.Invalid(p, v, msg))
	}
	return errs
}

func labelValue(v string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsValidLabelValue(v) {
		errs = append(errs, field.Invalid(p, v, msg))
	}
	return errs
}

var taintEffects = sets.New(resourcev1.DeviceTaintEffectNoSchedule, resourcev1.DeviceTaintEffectNoExecute, resourcev1.DeviceTaintEffectNone)

// deviceTaint: a label-name key, a label-value value, and a known effect
// (checked only when it changed, as upstream, so that a stored taint with
// an effect a newer server added stays writable).
func deviceTaint(t resourcev1.DeviceTaint, old *resourcev1.DeviceTaint, p *field.Path) field.ErrorList {
	errs := metav1validation.ValidateLabelName(t.Key, p.Child("key"))
	if t.Value != "" {
		errs = append(errs, labelValue(t.Value, p.Child("value"))...)
	}
	if old == nil || old.Effect != t.Effect {
		switch {
		case t.Effect == "":
			errs = append(errs, field.Required(p.Child("effect"), ""))
		case !taintEffects.Has(t.Effect):
			errs = append(errs, field.NotSupported(p.Child("effect"), t.Effect, sets.List(taintEffects)))
		}
	}
	return errs
}

func deviceToleration(t resourcev1.DeviceToleration, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if t.Key != "" {
		errs = append(errs, metav1validation.ValidateLabelName(t.Key, p.Child("key"))...)
	}
	switch t.Operator {
	case resourcev1.DeviceTolerationOpExists:
		if t.Value != "" {
			errs = append(errs, field.Invalid(p.Child("value"), t.Value, "must be empty for operator `Exists`"))
		}
	case resourcev1.DeviceTolerationOpEqual:
		errs = append(errs, labelValue(t.Value, p.Child("value"))...)
	case "":
		errs = append(errs, field.Required(p.Child("operator"), ""))
	default:
		errs = append(errs, field.NotSupported(p.Child("operator"), t.Operator,
			[]resourcev1.DeviceTolerationOperator{resourcev1.DeviceTolerationOpEqual, resourcev1.DeviceTolerationOpExists}))
	}
	if t.Effect != "" && !taintEffects.Has(t.Effect) {
		errs = append(errs, field.NotSupported(p.Child("effect"), t.Effect, sets.List(taintEffects)))
	}
	return errs
}

// selectors: at most 32, each with a CEL expression of at most 10 KiB.
// skiff does not compile the expression (nothing here evaluates it).
func selectors(sel []resourcev1.DeviceSelector, p *field.Path) field.ErrorList {
	if len(sel) > resourcev1.DeviceSelectorsMaxSize {
		return field.ErrorList{field.TooMany(p, len(sel), resourcev1.DeviceSelectorsMaxSize)}
	}
	var errs field.ErrorList
	for i, s := range sel {
		ip := p.Index(i)
		if s.CEL == nil {
			errs = append(errs, field.Required(ip.Child("cel"), ""))
			continue
		}
		ep := ip.Child("cel", "expression")
		switch {
		case strings.TrimSpace(s.CEL.Expression) == "":
			errs = append(errs, field.Required(ep, ""))
		case len(s.CEL.Expression) > resourcev1.CELSelectorExpressionMaxLength:
			errs = append(errs, field.TooLong(ep, "", resourcev1.CELSelectorExpressionMaxLength))
		}
	}
	return errs
}

// deviceConfiguration: an opaque configuration names its driver and
// carries at most 10 KiB of JSON object parameters.
func deviceConfiguration(c resourcev1.DeviceConfiguration, p *field.Path) field.ErrorList {
	if c.Opaque == nil {
		return field.ErrorList{field.Required(p.Child("opaque"), "")}
	}
	op := p.Child("opaque")
	errs := driverName(c.Opaque.Driver, op.Child("driver"))
	raw := c.Opaque.Parameters.Raw
	pp := op.Child("parameters")
	switch {
	case len(raw) == 0:
		errs = append(errs, field.Required(pp, ""))
	case len(raw) > resourcev1.OpaqueParametersMaxLength:
		errs = append(errs, field.TooLong(pp, "", resourcev1.OpaqueParametersMaxLength))
	case raw[0] != '{':
		errs = append(errs, field.Invalid(pp, "<value omitted>", "parameters must be a valid JSON object"))
	}
	return errs
}

// nodeSelector: at least one term, each a valid set of requirements.
func nodeSelector(ns *corev1.NodeSelector, p *field.Path) field.ErrorList {
	tp := p.Child("nodeSelectorTerms")
	if len(ns.NodeSelectorTerms) == 0 {
		return field.ErrorList{field.Required(tp, "must have at least one node selector term")}
	}
	var errs field.ErrorList
	for i, term := range ns.NodeSelectorTerms {
		for j, req := range term.MatchExpressions {
			rp := tp.Index(i).Child("matchExpressions").Index(j)
			errs = append(errs, metav1validation.ValidateLabelName(req.Key, rp.Child("key"))...)
			errs = append(errs, requirementValues(req, rp)...)
		}
		for j, req := range term.MatchFields {
			rp := tp.Index(i).Child("matchFields").Index(j)
			if req.Key != "metadata.name" {
				errs = append(errs, field.Invalid(rp.Child("key"), req.Key, "not a valid field selector key"))
			}
			errs = append(errs, requirementValues(req, rp)...)
		}
	}
	return errs
}

func requirementValues(req corev1.NodeSelectorRequirement, p *field.Path) field.ErrorList {
	switch req.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		if len(req.Values) == 0 {
			return field.ErrorList{field.Required(p.Child("values"), "must be specified when `operator` is 'In' or 'NotIn'")}
		}
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		if len(req.Values) > 0 {
			return field.ErrorList{field.Forbidden(p.Child("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")}
		}
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if len(req.Values) != 1 {
			return field.ErrorList{field.Required(p.Child("values"), "must be specified single value when `operator` is 'Lt' or 'Gt'")}
		}
	default:
		return field.ErrorList{field.Invalid(p.Child("operator"), req.Operator, "not a valid selector operator")}
	}
	return nil
}

// uniqueNames reports duplicate keys among n items as upstream's
// validateSet does: field.Duplicate at the later index.
func uniqueNames(n int, key func(int) string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for i := 0; i < n; i++ {
		k := key(i)
		if seen.Has(k) {
			errs = append(errs, field.Duplicate(p.Index(i), k))
		}
		seen.Insert(k)
	}
	return errs
}

// tooMany is the size check that short-circuits a list's validation.
func tooMany(n, limit int, p *field.Path) field.ErrorList {
	if n > limit {
		return field.ErrorList{field.TooMany(p, n, limit)}
	}
	return nil
}

// isExtendedResourceName: a resource name outside kubernetes.io that
// needs a domain ("example.com/gpu") and could be quota's
// "requests.<name>".
func isExtendedResourceName(name corev1.ResourceName) bool {
	n := string(name)
	if !strings.Contains(n, "/") || strings.Contains(n, "kubernetes.io/") || strings.HasPrefix(n, corev1.DefaultResourceRequestsPrefix) {
		return false
	}
	return len(validation.IsQualifiedName(corev1.DefaultResourceRequestsPrefix+n)) == 0
}
