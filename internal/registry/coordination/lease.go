// Package coordination holds the registry of the coordination.k8s.io API
// group: leases, which leader election and node heartbeats write every few
// seconds, so their strategy is deliberately small.
package coordination

import (
	"context"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// Resources returns the descriptors of coordination.k8s.io/v1.
func Resources() []*registry.Resource {
	return []*registry.Resource{leases()}
}

func leases() *registry.Resource {
	return &registry.Resource{
		GroupVersion: coordinationv1.SchemeGroupVersion,
		Name:         "leases",
		Singular:     "lease",
		Kind:         "Lease",
		Namespaced:   true,
		New:          func() runtime.Object { return &coordinationv1.Lease{} },
		NewList:      func() runtime.Object { return &coordinationv1.LeaseList{} },
		Strategy: registry.Strategy{
			// Upstream's lease strategy never sets metadata.generation
			// (a lease has no status to observe it), so neither do we:
			// these replace the defaults that would set and bump it.
			PrepareForCreate: func(context.Context, runtime.Object) {},
			PrepareForUpdate: func(context.Context, runtime.Object, runtime.Object) {},
			Validate:         validateLease,
			ValidateUpdate:   func(obj, _ runtime.Object) field.ErrorList { return validateLease(obj) },
		},
		Table: leaseTable,
	}
}

// validateLease checks a lease's spec as upstream does. Upstream places no
// limit on holderIdentity beyond the object size, and neither do we.
func validateLease(obj runtime.Object) field.ErrorList {
	l, ok := obj.(*coordinationv1.Lease)
	if !ok {
		return nil
	}
	var errs field.ErrorList
	spec, p := &l.Spec, field.NewPath("spec")
	if spec.LeaseDurationSeconds != nil && *spec.LeaseDurationSeconds <= 0 {
		errs = append(errs, field.Invalid(p.Child("leaseDurationSeconds"), *spec.LeaseDurationSeconds, "must be greater than 0"))
	}
	if spec.LeaseTransitions != nil && *spec.LeaseTransitions < 0 {
		errs = append(errs, field.Invalid(p.Child("leaseTransitions"), *spec.LeaseTransitions, "must be greater than or equal to 0"))
	}
	if spec.Strategy != nil {
		errs = append(errs, validateStrategy(*spec.Strategy, p.Child("strategy"))...)
	}
	if spec.PreferredHolder != nil && *spec.PreferredHolder != "" && (spec.Strategy == nil || *spec.Strategy == "") {
		errs = append(errs, field.Forbidden(p.Child("preferredHolder"), "may only be specified if `strategy` is defined"))
	}
	return errs
}

// validateStrategy accepts the built-in strategy and any custom one named
// as a prefixed qualified name ("example.com/mine").
func validateStrategy(s coordinationv1.CoordinatedLeaseStrategy, p *field.Path) field.ErrorList {
	if s == coordinationv1.OldestEmulationVersion {
		return nil
	}
	if !strings.Contains(string(s), "/") {
		return field.ErrorList{field.NotSupported(p, s, []string{string(coordinationv1.OldestEmulationVersion)})}
	}
	var errs field.ErrorList
	for _, msg := range content.IsLabelKey(string(s)) {
		errs = append(errs, field.Invalid(p, s, msg))
	}
	return errs
}

var leaseTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "Holder", Type: "string", Description: coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"]},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		l, ok := obj.(*coordinationv1.Lease)
		if !ok {
			return nil
		}
		holder := ""
		if l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		return []interface{}{l.Name, holder, registry.Age(l)}
	},
}
