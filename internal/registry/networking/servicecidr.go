package networking

import (
	"context"
	"net/netip"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// DefaultServiceCIDRName names the ServiceCIDR that holds the cluster's
// service range (--service-cidr), as upstream's.
const DefaultServiceCIDRName = "kubernetes"

func serviceCIDRs() *registry.Resource {
	return &registry.Resource{
		GroupVersion: networkingv1.SchemeGroupVersion,
		Name:         "servicecidrs",
		Singular:     "servicecidr",
		Kind:         "ServiceCIDR",
		Namespaced:   false,
		New:          func() runtime.Object { return &networkingv1.ServiceCIDR{} },
		NewList:      func() runtime.Object { return &networkingv1.ServiceCIDRList{} },
		Status:       true,
		Strategy: registry.Strategy{
			// Upstream's strategy resets status on create and keeps it on
			// update, and sets no metadata.generation.
			PrepareForCreate: func(_ context.Context, obj runtime.Object) {
				if c, ok := obj.(*networkingv1.ServiceCIDR); ok {
					c.Status = networkingv1.ServiceCIDRStatus{}
				}
			},
			PrepareForUpdate: func(_ context.Context, obj, old runtime.Object) {
				c, ok := obj.(*networkingv1.ServiceCIDR)
				oc, ok2 := old.(*networkingv1.ServiceCIDR)
				if ok && ok2 {
					c.Status = oc.Status
				}
			},
			// A status write changes status alone: not even labels or
			// annotations (upstream's ResetObjectMetaForStatus).
			PrepareForStatusUpdate: func(_ context.Context, obj, old runtime.Object) {
				c, ok := obj.(*networkingv1.ServiceCIDR)
				oc, ok2 := old.(*networkingv1.ServiceCIDR)
				if ok && ok2 {
					c.Spec = oc.Spec
					metav1.ResetObjectMetaForStatus(&c.ObjectMeta, &oc.ObjectMeta)
				}
			},
			Validate:       validateServiceCIDR,
			ValidateUpdate: validateServiceCIDRUpdate,
		},
		Table: serviceCIDRTable,
	}
}

// DefaultServiceCIDR returns the default ServiceCIDR for the cluster's
// service ranges, Ready as upstream's default-servicecidr controller
// marks it once it matches the server's flags.
func DefaultServiceCIDR(cidrs []netip.Prefix) *networkingv1.ServiceCIDR {
	c := &networkingv1.ServiceCIDR{
		TypeMeta:   metav1.TypeMeta{APIVersion: networkingv1.SchemeGroupVersion.String(), Kind: "ServiceCIDR"},
		ObjectMeta: metav1.ObjectMeta{Name: DefaultServiceCIDRName},
	}
	for _, p := range cidrs {
		c.Spec.CIDRs = append(c.Spec.CIDRs, p.Masked().String())
	}
	SetServiceCIDRReady(c)
	return c
}

// SetServiceCIDRReady sets the Ready condition upstream's controller sets
// on the default ServiceCIDR, and reports whether it changed anything.
// A Ready condition already there, True or False, is left alone: False
// is an administrator's to clear, as upstream.
func SetServiceCIDRReady(c *networkingv1.ServiceCIDR) bool {
	if cond := apimeta.FindStatusCondition(c.Status.Conditions, networkingv1.ServiceCIDRConditionReady); cond != nil && cond.Status != metav1.ConditionUnknown {
		return false
	}
	return apimeta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{
		Type:               networkingv1.ServiceCIDRConditionReady,
		Status:             metav1.ConditionTrue,
		Reason:             "",
		Message:            "Kubernetes default Service CIDR is ready",
		LastTransitionTime: metav1.Now(),
	})
}

func validateServiceCIDR(obj runtime.Object) field.ErrorList {
	c, ok := obj.(*networkingv1.ServiceCIDR)
	if !ok {
		return nil
	}
	return validateServiceCIDRSpec(&c.Spec, field.NewPath("spec", "cidrs"))
}

// validateServiceCIDRSpec: one or two valid CIDRs, of different families.
func validateServiceCIDRSpec(spec *networkingv1.ServiceCIDRSpec, p *field.Path) field.ErrorList {
	switch n := len(spec.CIDRs); {
	case n == 0:
		return field.ErrorList{field.Required(p, "at least one CIDR required")}
	case n > 2:
		return field.ErrorList{field.Invalid(p, spec, "may only hold up to 2 values")}
	}
	var errs field.ErrorList
	for i, c := range spec.CIDRs {
		errs = append(errs, validation.IsValidCIDR(p.Index(i), c)...)
	}
	if len(spec.CIDRs) == 2 {
		a, errA := netip.ParsePrefix(spec.CIDRs[0])
		b, errB := netip.ParsePrefix(spec.CIDRs[1])
		if errA == nil && errB == nil && a.Addr().Is4() == b.Addr().Is4() {
			errs = append(errs, field.Invalid(p, spec.CIDRs, "may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64"))
		}
	}
	return errs
}

// validateServiceCIDRUpdate: the CIDRs never change, except that a
// single-stack range may gain a second family.
func validateServiceCIDRUpdate(obj, old runtime.Object) field.ErrorList {
	c, ok := obj.(*networkingv1.ServiceCIDR)
	oc, ok2 := old.(*networkingv1.ServiceCIDR)
	if !ok || !ok2 {
		return nil
	}
	p := field.NewPath("spec", "cidrs")
	var errs field.ErrorList
	switch {
	case len(oc.Spec.CIDRs) == len(c.Spec.CIDRs):
		for i := range oc.Spec.CIDRs {
			if oc.Spec.CIDRs[i] != c.Spec.CIDRs[i] {
				errs = append(errs, field.Invalid(p.Index(i), c.Spec.CIDRs[i], apivalidation.FieldImmutableErrorMsg))
			}
		}
	case len(oc.Spec.CIDRs) == 1 && len(c.Spec.CIDRs) == 2:
		if c.Spec.CIDRs[0] != oc.Spec.CIDRs[0] {
			errs = append(errs, field.Invalid(p.Index(0), c.Spec.CIDRs[0], apivalidation.FieldImmutableErrorMsg))
		}
		errs = append(errs, validateServiceCIDRSpec(&c.Spec, p)...)
	default:
		errs = append(errs, field.Invalid(p, c.Spec.CIDRs, apivalidation.FieldImmutableErrorMsg))
	}
	return errs
}

var serviceCIDRTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "CIDRs", Type: "string", Description: networkingv1.ServiceCIDRSpec{}.SwaggerDoc()["cidrs"]},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		c, ok := obj.(*networkingv1.ServiceCIDR)
		if !ok {
			return nil
		}
		return []interface{}{c.Name, strings.Join(c.Spec.CIDRs, ","), registry.Age(c)}
	},
}
