package autoscaling

import (
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Upstream's bounds on scaling rules.
const (
	maxStabilizationWindowSeconds = 3600
	maxPeriodSeconds              = 1800
)

var (
	metricSourceTypes = []string{"ContainerResource", "External", "Object", "Pods", "Resource"}
	policyTypes       = []string{string(autoscalingv2.PercentScalingPolicy), string(autoscalingv2.PodsScalingPolicy)}
	selectPolicies    = []string{string(autoscalingv2.DisabledPolicySelect), string(autoscalingv2.MaxChangePolicySelect), string(autoscalingv2.MinChangePolicySelect)}
)

// validateHPA checks the spec of an HPA in its v2 form. Scale to zero
// (minReplicas 0, upstream's alpha HPAScaleToZero gate) is not accepted.
func validateHPA(h *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
	spec, p := &h.Spec, field.NewPath("spec")
	errs := validateObjectRef(spec.ScaleTargetRef, p.Child("scaleTargetRef"))
	if spec.MinReplicas != nil && *spec.MinReplicas < 1 {
		errs = append(errs, field.Invalid(p.Child("minReplicas"), *spec.MinReplicas, "must be greater than or equal to 1"))
	}
	if spec.MaxReplicas < 1 {
		errs = append(errs, field.Invalid(p.Child("maxReplicas"), spec.MaxReplicas, "must be greater than 0"))
	}
	if spec.MinReplicas != nil && spec.MaxReplicas < *spec.MinReplicas {
		errs = append(errs, field.Invalid(p.Child("maxReplicas"), spec.MaxReplicas, "must be greater than or equal to `minReplicas`"))
	}
	for i, m := range spec.Metrics {
		errs = append(errs, validateMetricSpec(m, p.Child("metrics").Index(i))...)
	}
	if b := spec.Behavior; b != nil {
		errs = append(errs, validateRules(b.ScaleUp, p.Child("behavior", "scaleUp"))...)
		errs = append(errs, validateRules(b.ScaleDown, p.Child("behavior", "scaleDown"))...)
	}
	return errs
}

func validateHPAStatus(h *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
	p := field.NewPath("status")
	errs := apivalidation.ValidateNonnegativeField(int64(h.Status.CurrentReplicas), p.Child("currentReplicas"))
	return append(errs, apivalidation.ValidateNonnegativeField(int64(h.Status.DesiredReplicas), p.Child("desiredReplicas"))...)
}

func pathSegmentErrs(v string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range content.IsPathSegmentName(v) {
		errs = append(errs, field.Invalid(p, v, msg))
	}
	return errs
}

func validateObjectRef(ref autoscalingv2.CrossVersionObjectReference, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if ref.Kind == "" {
		errs = append(errs, field.Required(p.Child("kind"), ""))
	} else {
		errs = append(errs, pathSegmentErrs(ref.Kind, p.Child("kind"))...)
	}
	if ref.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	} else {
		errs = append(errs, pathSegmentErrs(ref.Name, p.Child("name"))...)
	}
	return errs
}

// validateMetricSpec: the source named by type must be set, and only it.
func validateMetricSpec(m autoscalingv2.MetricSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if m.Type == "" {
		errs = append(errs, field.Required(p.Child("type"), "must specify a metric source type"))
	} else if !contains(metricSourceTypes, string(m.Type)) {
		errs = append(errs, field.NotSupported(p.Child("type"), m.Type, metricSourceTypes))
	}
	present := map[string]bool{
		"object":            m.Object != nil,
		"pods":              m.Pods != nil,
		"resource":          m.Resource != nil,
		"containerResource": m.ContainerResource != nil,
		"external":          m.External != nil,
	}
	expected := map[autoscalingv2.MetricSourceType]string{
		autoscalingv2.ObjectMetricSourceType:            "object",
		autoscalingv2.PodsMetricSourceType:              "pods",
		autoscalingv2.ResourceMetricSourceType:          "resource",
		autoscalingv2.ContainerResourceMetricSourceType: "containerResource",
		autoscalingv2.ExternalMetricSourceType:          "external",
	}[m.Type]
	if expected != "" && !present[expected] {
		errs = append(errs, field.Required(p.Child(expected), "must populate information for the given metric source"))
	}
	for _, name := range []string{"object", "pods", "resource", "containerResource", "external"} {
		if present[name] && expected != "" && name != expected {
			errs = append(errs, field.Forbidden(p.Child(name), "must populate the given metric source only"))
		}
	}
	if s := m.Object; s != nil {
		sp := p.Child("object")
		errs = append(errs, validateObjectRef(s.DescribedObject, sp.Child("describedObject"))...)
		errs = append(errs, validateMetricIdentifier(s.Metric, sp.Child("metric"))...)
		errs = append(errs, validateTarget(s.Target, sp.Child("target"))...)
		if s.Target.Value == nil && s.Target.AverageValue == nil {
			errs = append(errs, field.Required(sp.Child("target", "averageValue"), "must set either a target value or averageValue"))
		}
	}
	if s := m.Pods; s != nil {
		sp := p.Child("pods")
		errs = append(errs, validateMetricIdentifier(s.Metric, sp.Child("metric"))...)
		errs = append(errs, validateTarget(s.Target, sp.Child("target"))...)
		if s.Target.AverageValue == nil {
			errs = append(errs, field.Required(sp.Child("target", "averageValue"), "must specify a positive target averageValue"))
		}
	}
	if s := m.Resource; s != nil {
		errs = append(errs, validateResourceSource(string(s.Name), s.Target, p.Child("resource"))...)
	}
	if s := m.ContainerResource; s != nil {
		sp := p.Child("containerResource")
		errs = append(errs, validateResourceSource(string(s.Name), s.Target, sp)...)
		if s.Container == "" {
			errs = append(errs, field.Required(sp.Child("container"), "must specify a container"))
		} else {
			for _, msg := range validation.IsDNS1123Label(s.Container) {
				errs = append(errs, field.Invalid(sp.Child("container"), s.Container, msg))
			}
		}
	}
	if s := m.External; s != nil {
		sp := p.Child("external")
		errs = append(errs, validateMetricIdentifier(s.Metric, sp.Child("metric"))...)
		errs = append(errs, validateTarget(s.Target, sp.Child("target"))...)
		if s.Target.Value == nil && s.Target.AverageValue == nil {
			errs = append(errs, field.Required(sp.Child("target", "averageValue"), "must set either a target value for metric or a per-pod target"))
		}
		if s.Target.Value != nil && s.Target.AverageValue != nil {
			errs = append(errs, field.Forbidden(sp.Child("target", "value"), "may not set both a target value for metric and a per-pod target"))
		}
	}
	return errs
}

// validateResourceSource: a resource metric targets either utilization
// or an average value.
func validateResourceSource(name string, t autoscalingv2.MetricTarget, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(p.Child("name"), "must specify a resource name"))
	}
	errs = append(errs, validateTarget(t, p.Child("target"))...)
	if t.AverageUtilization == nil && t.AverageValue == nil {
		errs = append(errs, field.Required(p.Child("target", "averageUtilization"), "must set either a target raw value or a target utilization"))
	}
	if t.AverageUtilization != nil && t.AverageValue != nil {
		errs = append(errs, field.Forbidden(p.Child("target", "averageValue"), "may not set both a target raw value and a target utilization"))
	}
	return errs
}

func validateMetricIdentifier(id autoscalingv2.MetricIdentifier, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if id.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), "must specify a metric name"))
	} else {
		errs = append(errs, pathSegmentErrs(id.Name, p.Child("name"))...)
	}
	return append(errs, metav1validation.ValidateLabelSelector(id.Selector, metav1validation.LabelSelectorValidationOptions{}, p.Child("selector"))...)
}

func validateTarget(t autoscalingv2.MetricTarget, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch t.Type {
	case "":
		errs = append(errs, field.Required(p.Child("type"), "must specify a metric target type"))
	case autoscalingv2.UtilizationMetricType, autoscalingv2.ValueMetricType, autoscalingv2.AverageValueMetricType:
	default:
		errs = append(errs, field.Invalid(p.Child("type"), t.Type, "must be either Utilization, Value, or AverageValue"))
	}
	if t.Value != nil && t.Value.Sign() != 1 {
		errs = append(errs, field.Invalid(p.Child("value"), t.Value.String(), "must be positive"))
	}
	if t.AverageValue != nil && t.AverageValue.Sign() != 1 {
		errs = append(errs, field.Invalid(p.Child("averageValue"), t.AverageValue.String(), "must be positive"))
	}
	if t.AverageUtilization != nil && *t.AverageUtilization < 1 {
		errs = append(errs, field.Invalid(p.Child("averageUtilization"), *t.AverageUtilization, "must be greater than 0"))
	}
	return errs
}

func validateRules(r *autoscalingv2.HPAScalingRules, p *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var errs field.ErrorList
	if w := r.StabilizationWindowSeconds; w != nil {
		if *w < 0 {
			errs = append(errs, field.Invalid(p.Child("stabilizationWindowSeconds"), *w, "must be greater than or equal to zero"))
		} else if *w > maxStabilizationWindowSeconds {
			errs = append(errs, field.Invalid(p.Child("stabilizationWindowSeconds"), *w, fmt.Sprintf("must be less than or equal to %v", maxStabilizationWindowSeconds)))
		}
	}
	if r.SelectPolicy != nil && !contains(selectPolicies, string(*r.SelectPolicy)) {
		errs = append(errs, field.NotSupported(p.Child("selectPolicy"), *r.SelectPolicy, selectPolicies))
	}
	if len(r.Policies) == 0 {
		errs = append(errs, field.Required(p.Child("policies"), "must specify at least one Policy"))
	}
	for i, pol := range r.Policies {
		pp := p.Child("policies").Index(i)
		if !contains(policyTypes, string(pol.Type)) {
			errs = append(errs, field.NotSupported(pp.Child("type"), pol.Type, policyTypes))
		}
		if pol.Value <= 0 {
			errs = append(errs, field.Invalid(pp.Child("value"), pol.Value, "must be greater than zero"))
		}
		if pol.PeriodSeconds <= 0 {
			errs = append(errs, field.Invalid(pp.Child("periodSeconds"), pol.PeriodSeconds, "must be greater than zero"))
		} else if pol.PeriodSeconds > maxPeriodSeconds {
			errs = append(errs, field.Invalid(pp.Child("periodSeconds"), pol.PeriodSeconds, fmt.Sprintf("must be less than or equal to %v", maxPeriodSeconds)))
		}
	}
	if r.Tolerance != nil && r.Tolerance.Sign() < 0 {
		errs = append(errs, field.Invalid(p.Child("tolerance"), r.Tolerance.String(), "must be greater than or equal to zero"))
	}
	return errs
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
