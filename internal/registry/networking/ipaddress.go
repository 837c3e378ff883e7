package networking

import (
	"context"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

func ipAddresses() *registry.Resource {
	return &registry.Resource{
		GroupVersion: networkingv1.SchemeGroupVersion,
		Name:         "ipaddresses",
		Singular:     "ipaddress",
		Kind:         "IPAddress",
		ShortNames:   []string{"ip"},
		Namespaced:   false,
		New:          func() runtime.Object { return &networkingv1.IPAddress{} },
		NewList:      func() runtime.Object { return &networkingv1.IPAddressList{} },
		Strategy: registry.Strategy{
			// Upstream sets no metadata.generation on IPAddresses.
			PrepareForCreate: func(context.Context, runtime.Object) {},
			PrepareForUpdate: func(context.Context, runtime.Object, runtime.Object) {},
			NameValidation:   ipAddressName,
			Validate:         validateIPAddress,
			ValidateUpdate:   validateIPAddressUpdate,
		},
		Table: ipAddressTable,
	}
}

// ipAddressName: the name is the address, in canonical form
// ("2001:db8::1", not "2001:db8:0::1"). generateName cannot make one.
func ipAddressName(name string, _ bool) []string {
	var out []string
	for _, e := range validation.IsValidIP(&field.Path{}, name) {
		out = append(out, e.Detail)
	}
	return out
}

func validateIPAddress(obj runtime.Object) field.ErrorList {
	ip, ok := obj.(*networkingv1.IPAddress)
	if !ok {
		return nil
	}
	p := field.NewPath("spec", "parentRef")
	ref := ip.Spec.ParentRef
	if ref == nil {
		return field.ErrorList{field.Required(p, "")}
	}
	var errs field.ErrorList
	if ref.Group != "" {
		for _, msg := range validation.IsDNS1123Subdomain(ref.Group) {
			errs = append(errs, field.Invalid(p.Child("group"), ref.Group, msg))
		}
	}
	errs = append(errs, validatePathSegment(ref.Resource, p.Child("resource"))...)
	errs = append(errs, validatePathSegment(ref.Name, p.Child("name"))...)
	if ref.Namespace != "" {
		for _, msg := range content.IsPathSegmentName(ref.Namespace) {
			errs = append(errs, field.Invalid(p.Child("namespace"), ref.Namespace, msg))
		}
	}
	return errs
}

// validateIPAddressUpdate: the parent never changes.
func validateIPAddressUpdate(obj, old runtime.Object) field.ErrorList {
	ip, ok := obj.(*networkingv1.IPAddress)
	oip, ok2 := old.(*networkingv1.IPAddress)
	if !ok || !ok2 {
		return nil
	}
	errs := validateIPAddress(obj)
	return append(errs, apivalidation.ValidateImmutableField(ip.Spec.ParentRef, oip.Spec.ParentRef, field.NewPath("spec", "parentRef"))...)
}

// ipAddressTable has upstream's two columns (upstream's rows carry an age
// cell its columns do not name, which kubectl never prints).
var ipAddressTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "ParentRef", Type: "string", Description: networkingv1.IPAddressSpec{}.SwaggerDoc()["parentRef"]},
	},
	Row: func(obj runtime.Object) []interface{} {
		ip, ok := obj.(*networkingv1.IPAddress)
		if !ok {
			return nil
		}
		parent := "<none>"
		if ref := ip.Spec.ParentRef; ref != nil {
			parent = strings.ToLower(schema.GroupResource{Group: ref.Group, Resource: ref.Resource}.String())
			if ref.Namespace != "" {
				parent += "/" + ref.Namespace
			}
			parent += "/" + ref.Name
		}
		return []interface{}{ip.Name, parent}
	},
}
