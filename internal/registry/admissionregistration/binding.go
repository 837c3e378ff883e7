package admissionregistration

import (
	"slices"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var (
	supportedValidationActions = []string{
		string(admissionregistrationv1.Audit),
		string(admissionregistrationv1.Deny),
		string(admissionregistrationv1.Warn),
	}
	supportedParameterNotFoundActions = []string{
		string(admissionregistrationv1.DenyAction),
		string(admissionregistrationv1.AllowAction),
	}
)

func validateBinding(obj runtime.Object) field.ErrorList {
	b, ok := obj.(*admissionregistrationv1.ValidatingAdmissionPolicyBinding)
	if !ok {
		return nil
	}
	p := field.NewPath("spec")
	errs := validatePolicyName(b.Spec.PolicyName, p.Child("policyName"))
	errs = append(errs, validateParamRef(b.Spec.ParamRef, p.Child("paramRef"))...)
	errs = append(errs, validateMatchResources(b.Spec.MatchResources, p.Child("matchResources"))...)
	return append(errs, validateValidationActions(b.Spec.ValidationActions, p.Child("validationActions"))...)
}

// validatePolicyName: a binding names its policy, whose name is a DNS
// subdomain.
func validatePolicyName(name string, p *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	var errs field.ErrorList
	for _, msg := range apivalidation.NameIsDNSSubdomain(name, false) {
		errs = append(errs, field.Invalid(p, name, msg))
	}
	return errs
}

// validateBindingUpdate: nothing of a binding is immutable.
func validateBindingUpdate(obj, _ runtime.Object) field.ErrorList {
	return validateBinding(obj)
}

// validateParamRef: exactly one of name and selector, and what to do
// when no parameter matches.
func validateParamRef(pr *admissionregistrationv1.ParamRef, p *field.Path) field.ErrorList {
	if pr == nil {
		return nil
	}
	var errs field.ErrorList
	if pr.Name != "" {
		for _, msg := range path.ValidatePathSegmentName(pr.Name, false) {
			errs = append(errs, field.Invalid(p.Child("name"), pr.Name, msg))
		}
		if pr.Selector != nil {
			errs = append(errs, field.Forbidden(p.Child("name"), "name and selector are mutually exclusive"))
		}
	}
	if pr.Selector != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(pr.Selector, metav1validation.LabelSelectorValidationOptions{}, p.Child("selector"))...)
		if pr.Name != "" {
			errs = append(errs, field.Forbidden(p.Child("selector"), "name and selector are mutually exclusive"))
		}
	}
	if pr.Name == "" && pr.Selector == nil {
		errs = append(errs, field.Required(p, "one of name or selector must be specified"))
	}
	switch a := pr.ParameterNotFoundAction; {
	case a == nil || *a == "":
		errs = append(errs, field.Required(p.Child("parameterNotFoundAction"), ""))
	case !slices.Contains(supportedParameterNotFoundActions, string(*a)):
		// Upstream reports the pointer, and lists Deny before Allow.
		errs = append(errs, field.NotSupported(p.Child("parameterNotFoundAction"), a, supportedParameterNotFoundActions))
	}
	return errs
}

// validateValidationActions: at least one, unique, and not both Deny and
// Warn (the failure would be reported twice, in the response and in its
// warnings).
func validateValidationActions(actions []admissionregistrationv1.ValidationAction, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[admissionregistrationv1.ValidationAction]()
	for i, a := range actions {
		if !slices.Contains(supportedValidationActions, string(a)) {
			errs = append(errs, field.NotSupported(p.Index(i), a, supportedValidationActions))
		}
		if seen.Has(a) {
			errs = append(errs, field.Duplicate(p.Index(i), a))
		}
		seen.Insert(a)
	}
	if seen.Has(admissionregistrationv1.Deny) && seen.Has(admissionregistrationv1.Warn) {
		errs = append(errs, field.Invalid(p, actions, "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)"))
	}
	if len(seen) == 0 {
		errs = append(errs, field.Required(p, "at least one validation action is required"))
	}
	return errs
}
