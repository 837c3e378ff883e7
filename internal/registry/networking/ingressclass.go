package networking

import (
	networkingv1 "k8s.io/api/networking/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// maxControllerLength is the longest spec.controller upstream accepts.
const maxControllerLength = 250

func ingressClasses() *registry.Resource {
	return &registry.Resource{
		GroupVersion: networkingv1.SchemeGroupVersion,
		Name:         "ingressclasses",
		Singular:     "ingressclass",
		Kind:         "IngressClass",
		Namespaced:   false,
		New:          func() runtime.Object { return &networkingv1.IngressClass{} },
		NewList:      func() runtime.Object { return &networkingv1.IngressClassList{} },
		Strategy: registry.Strategy{
			Default:        defaultIngressClass,
			Validate:       validateIngressClass,
			ValidateUpdate: validateIngressClassUpdate,
		},
		Table: ingressClassTable,
	}
}

// defaultIngressClass: parameters without a scope are cluster-scoped.
func defaultIngressClass(obj runtime.Object) {
	ic, ok := obj.(*networkingv1.IngressClass)
	if !ok || ic.Spec.Parameters == nil || ic.Spec.Parameters.Scope != nil {
		return
	}
	scope := networkingv1.IngressClassParametersReferenceScopeCluster
	ic.Spec.Parameters.Scope = &scope
}

func validateIngressClass(obj runtime.Object) field.ErrorList {
	ic, ok := obj.(*networkingv1.IngressClass)
	if !ok {
		return nil
	}
	p := field.NewPath("spec")
	var errs field.ErrorList
	if len(ic.Spec.Controller) > maxControllerLength {
		errs = append(errs, field.TooLong(p.Child("controller"), "", maxControllerLength))
	}
	errs = append(errs, validation.IsDomainPrefixedPath(p.Child("controller"), ic.Spec.Controller)...)
	return append(errs, validateParametersReference(ic.Spec.Parameters, p.Child("parameters"))...)
}

// validateIngressClassUpdate: the controller never changes.
func validateIngressClassUpdate(obj, old runtime.Object) field.ErrorList {
	ic, ok := obj.(*networkingv1.IngressClass)
	oic, ok2 := old.(*networkingv1.IngressClass)
	if !ok || !ok2 {
		return nil
	}
	errs := apivalidation.ValidateImmutableField(ic.Spec.Controller, oic.Spec.Controller, field.NewPath("spec", "controller"))
	return append(errs, validateIngressClass(obj)...)
}

// validateParametersReference: kind and name, a scope of Cluster or
// Namespace, and a namespace exactly when the scope is Namespace.
func validateParametersReference(ref *networkingv1.IngressClassParametersReference, p *field.Path) field.ErrorList {
	if ref == nil {
		return nil
	}
	var errs field.ErrorList
	if ref.APIGroup != nil {
		for _, msg := range validation.IsDNS1123Subdomain(*ref.APIGroup) {
			errs = append(errs, field.Invalid(p.Child("apiGroup"), *ref.APIGroup, msg))
		}
	}
	errs = append(errs, validatePathSegment(ref.Kind, p.Child("kind"))...)
	errs = append(errs, validatePathSegment(ref.Name, p.Child("name"))...)
	if ref.Scope == nil {
		return append(errs, field.Required(p.Child("scope"), ""))
	}
	switch *ref.Scope {
	case networkingv1.IngressClassParametersReferenceScopeNamespace:
		if ref.Namespace == nil {
			errs = append(errs, field.Required(p.Child("namespace"), "`parameters.scope` is set to 'Namespace'"))
		} else {
			for _, msg := range registry.NameIsDNSLabel(*ref.Namespace, false) {
				errs = append(errs, field.Invalid(p.Child("namespace"), *ref.Namespace, msg))
			}
		}
	case networkingv1.IngressClassParametersReferenceScopeCluster:
		if ref.Namespace != nil {
			errs = append(errs, field.Forbidden(p.Child("namespace"), "`parameters.scope` is set to 'Cluster'"))
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("scope"), *ref.Scope, []string{
			networkingv1.IngressClassParametersReferenceScopeCluster, networkingv1.IngressClassParametersReferenceScopeNamespace}))
	}
	return errs
}

var ingressClassTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "Controller", Type: "string", Description: "Controller that is responsible for handling this class"},
		{Name: "Parameters", Type: "string", Description: "A reference to a resource with additional parameters"},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		ic, ok := obj.(*networkingv1.IngressClass)
		if !ok {
			return nil
		}
		name := ic.Name
		if ic.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true" {
			name += " (default)"
		}
		params := "<none>"
		if ref := ic.Spec.Parameters; ref != nil {
			params = ref.Kind
			if ref.APIGroup != nil {
				params += "." + *ref.APIGroup
			}
			params += "/" + ref.Name
		}
		return []interface{}{name, ic.Spec.Controller, params, registry.Age(ic)}
	},
}
