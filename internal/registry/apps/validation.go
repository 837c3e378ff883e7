package apps

import (
	"fmt"

	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry/core"
)

// selectorMismatchMsg is upstream's message when a workload's selector does
// not select its own pod template.
const selectorMismatchMsg = "`selector` does not match template `labels`"

// validateSelector checks a workload's spec.selector: present, well formed
// and not empty ("empty selector is invalid for <kind>"). It returns the
// parsed selector, or nil when it could not be parsed (errors reported).
// oldSelector, when not nil, lets invalid label values through that the
// stored object already had (upstream's AllowInvalidLabelValueInSelector).
func validateSelector(sel, oldSelector *metav1.LabelSelector, kind string, fldPath *field.Path) (labels.Selector, field.ErrorList) {
	if sel == nil {
		return nil, field.ErrorList{field.Required(fldPath, "")}
	}
	opts := metav1validation.LabelSelectorValidationOptions{
		AllowInvalidLabelValueInSelector: oldSelector != nil && metav1validation.LabelSelectorHasInvalidLabelValue(oldSelector),
	}
	errs := metav1validation.ValidateLabelSelector(sel, opts, fldPath)
	if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		errs = append(errs, field.Invalid(fldPath, sel, "empty selector is invalid for "+kind))
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		errs = append(errs, field.Invalid(fldPath, sel, "invalid label selector"))
		return nil, errs
	}
	return s, errs
}

// validateReplicatedTemplate checks the pod template of a workload whose
// pods run forever (deployments, replicasets, daemonsets): the selector
// selects it, the core pod template rules hold and restartPolicy is Always
// (callers add their own activeDeadlineSeconds rule). sel may be nil
// (selector already reported invalid). fldPath is the template's path
// ("spec.template").
func validateReplicatedTemplate(t *corev1.PodTemplateSpec, sel labels.Selector, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if sel != nil && !sel.Empty() && !sel.Matches(labels.Set(t.Labels)) {
		errs = append(errs, field.Invalid(fldPath.Child("metadata", "labels"), t.Labels, selectorMismatchMsg))
	}
	errs = append(errs, core.ValidatePodTemplateSpec(t, fldPath)...)
	errs = append(errs, validateRestartPolicyAlways(t, errs, fldPath)...)
	return errs
}

// validateRestartPolicyAlways is upstream's rule for long-running
// workloads. It stays quiet when the pod rules (in errs) rejected the value
// already, so a client sees one error for it.
func validateRestartPolicyAlways(t *corev1.PodTemplateSpec, errs field.ErrorList, fldPath *field.Path) field.ErrorList {
	p := fldPath.Child("spec", "restartPolicy")
	for _, e := range errs {
		if e.Field == p.String() {
			return nil
		}
	}
	if t.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		return field.ErrorList{field.NotSupported(p, t.Spec.RestartPolicy,
			[]string{string(corev1.RestartPolicyAlways)})}
	}
	return nil
}

// validateNonnegative is ValidateNonnegativeField for an optional int32.
func validateNonnegative(v *int32, fldPath *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	return apimachineryvalidation.ValidateNonnegativeField(int64(*v), fldPath)
}

// validatePositiveIntOrPercent checks an int-or-percent knob (maxSurge,
// maxUnavailable): a non-negative integer or a percent string ("25%").
func validatePositiveIntOrPercent(v *intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	var errs field.ErrorList
	switch v.Type {
	case intstr.String:
		for _, msg := range validation.IsValidPercent(v.StrVal) {
			errs = append(errs, field.Invalid(fldPath, v.StrVal, msg))
		}
	case intstr.Int:
		errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(v.IntVal), fldPath)...)
	default:
		errs = append(errs, field.Invalid(fldPath, v.String(), "must be an integer or percentage (e.g '5%')"))
	}
	return errs
}

// validateNotMoreThan100Percent rejects percentages above 100%.
func validateNotMoreThan100Percent(v *intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	if p, ok := percentValue(v); ok && p > 100 {
		return field.ErrorList{field.Invalid(fldPath, v.StrVal, "must not be greater than 100%")}
	}
	return nil
}

// percentValue returns the number of a valid percent string ("25%" -> 25).
func percentValue(v *intstr.IntOrString) (int, bool) {
	if v == nil || v.Type != intstr.String || len(validation.IsValidPercent(v.StrVal)) != 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%"))
	if err != nil {
		return 0, false
	}
	return n, true
}

// intOrPercentValue is the number an int-or-percent holds, ignoring the
// unit: used for upstream's "not both zero" checks. nil is 0.
func intOrPercentValue(v *intstr.IntOrString) int {
	if v == nil {
		return 0
	}
	if p, ok := percentValue(v); ok {
		return p
	}
	if v.Type == intstr.Int {
		return int(v.IntVal)
	}
	n, _ := strconv.Atoi(v.StrVal)
	return n
}

// validateCollisionCount checks status.collisionCount: non-negative and
// never decremented by a status write.
func validateCollisionCount(newCount, oldCount *int32, fldPath *field.Path) field.ErrorList {
	errs := validateNonnegative(newCount, fldPath)
	if oldCount != nil && (newCount == nil || *newCount < *oldCount) {
		var v int32
		if newCount != nil {
			v = *newCount
		}
		errs = append(errs, field.Invalid(fldPath, v, "cannot be decremented"))
	}
	return errs
}

// podNameWarning is upstream's warning for workloads whose name ends up in
// pod names and hostnames but is not a DNS label.
func podNameWarning(name string) []string {
	if msgs := validation.IsDNS1123Label(name); len(msgs) != 0 {
		return []string{"metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: [" + strings.Join(msgs, " ") + "]"}
	}
	return nil
}

// count is one named status counter ("readyReplicas").
type count struct {
	name  string
	value int32
}

// validateCounts checks that each status counter is >= 0.
func validateCounts(fldPath *field.Path, counts ...count) field.ErrorList {
	var errs field.ErrorList
	for _, c := range counts {
		errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(c.value), fldPath.Child(c.name))...)
	}
	return errs
}

// validateNotAbove checks that no counter exceeds status.replicas.
func validateNotAbove(fldPath *field.Path, replicas int32, counts ...count) field.ErrorList {
	var errs field.ErrorList
	for _, c := range counts {
		if c.value > replicas {
			errs = append(errs, field.Invalid(fldPath.Child(c.name), c.value, "cannot be greater than status.replicas"))
		}
	}
	return errs
}

// validateNoActiveDeadline rejects spec.template.spec.activeDeadlineSeconds
// on workloads whose pods must not end on their own.
func validateNoActiveDeadline(t *corev1.PodTemplateSpec, fldPath *field.Path, forbidden string) field.ErrorList {
	if t.Spec.ActiveDeadlineSeconds == nil {
		return nil
	}
	p := fldPath.Child("spec", "activeDeadlineSeconds")
	if forbidden != "" {
		return field.ErrorList{field.Forbidden(p, forbidden)}
	}
	return field.ErrorList{field.Invalid(p, *t.Spec.ActiveDeadlineSeconds, "must not be specified")}
}

// validateReplicaSetTemplate is upstream's ValidatePodTemplateSpecForReplicaSet
// (deployments and replicasets).
func validateReplicaSetTemplate(t *corev1.PodTemplateSpec, sel labels.Selector, fldPath *field.Path) field.ErrorList {
	errs := validateReplicatedTemplate(t, sel, fldPath)
	return append(errs, validateNoActiveDeadline(t, fldPath, "activeDeadlineSeconds in ReplicaSet is not Supported")...)
}

// intOrStringValue is what an error message shows for an int-or-percent.
func intOrStringValue(v *intstr.IntOrString) interface{} {
	if v == nil {
		return nil
	}
	if v.Type == intstr.Int {
		return v.IntVal
	}
	return v.StrVal
}

// scaleSelector is the scale subresource's status.selector: the parsed
// selector's string form, "" when it does not parse (upstream fails the
// request instead; validation keeps such selectors out of storage).
func scaleSelector(sel *metav1.LabelSelector) string {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return ""
	}
	return s.String()
}

// wrongType is the error a strategy func returns when handed an object of
// another type: a server bug, never a client's.
func wrongType(obj runtime.Object) field.ErrorList {
	return field.ErrorList{field.InternalError(nil, fmt.Errorf("unexpected object type %T", obj))}
}

// ptrTo returns a pointer to v.
func ptrTo[T any](v T) *T { return &v }
