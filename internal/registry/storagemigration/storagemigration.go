// Package storagemigration holds the registry of the
// storagemigration.k8s.io API group: StorageVersionMigrations, requests to
// rewrite every stored object of one resource in the current storage
// version, with upstream's validation of the spec and of the status a
// migrator writes.
//
// skiff serves the API; it runs no migrator. A migration stays as created
// until a client writes its status (docs/compatibility.md): skiff stores
// each resource in the one version it serves, so there is nothing to
// migrate.
package storagemigration

import (
	"context"
	"strings"

	svmv1 "k8s.io/api/storagemigration/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// Resources returns the descriptors of storagemigration.k8s.io/v1.
func Resources() []*registry.Resource {
	return []*registry.Resource{{
		GroupVersion: svmv1.SchemeGroupVersion,
		Name:         "storageversionmigrations",
		Singular:     "storageversionmigration",
		Kind:         "StorageVersionMigration",
		Namespaced:   false,
		New:          func() runtime.Object { return &svmv1.StorageVersionMigration{} },
		NewList:      func() runtime.Object { return &svmv1.StorageVersionMigrationList{} },
		Strategy: registry.Strategy{
			// Upstream resets status and sets no metadata.generation.
			PrepareForCreate: func(_ context.Context, obj runtime.Object) {
				if m, ok := obj.(*svmv1.StorageVersionMigration); ok {
					m.Status = svmv1.StorageVersionMigrationStatus{}
				}
			},
			PrepareForUpdate: func(_ context.Context, obj, old runtime.Object) {
				m, ok := obj.(*svmv1.StorageVersionMigration)
				om, ok2 := old.(*svmv1.StorageVersionMigration)
				if ok && ok2 {
					m.Status = om.Status
				}
			},
			Validate: func(obj runtime.Object) field.ErrorList {
				m, ok := obj.(*svmv1.StorageVersionMigration)
				if !ok {
					return nil
				}
				return validateSpec(&m.Spec)
			},
			ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
				m, ok := obj.(*svmv1.StorageVersionMigration)
				om, ok2 := old.(*svmv1.StorageVersionMigration)
				if !ok || !ok2 {
					return nil
				}
				errs := validateSpec(&m.Spec)
				return append(errs, apivalidation.ValidateImmutableField(m.Spec, om.Spec, field.NewPath("spec"))...)
			},
			ValidateStatusUpdate: validateStatusUpdate,
		},
		Status: true,
		Table:  table,
	}}
}

// validateSpec: the resource is a DNS-1035 label, its group (empty for
// the core group) a DNS subdomain, as an APIService's.
func validateSpec(s *svmv1.StorageVersionMigrationSpec) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec", "resource")
	if s.Resource.Resource == "" {
		errs = append(errs, field.Required(p.Child("resource"), "resource is required to be set"))
	} else if msgs := validation.IsDNS1035Label(s.Resource.Resource); len(msgs) > 0 {
		errs = append(errs, field.Invalid(p.Child("resource"), s.Resource.Resource, strings.Join(msgs, ",")))
	}
	if s.Resource.Group != "" {
		if msgs := validation.IsDNS1123Subdomain(s.Resource.Group); len(msgs) > 0 {
			errs = append(errs, field.Invalid(p.Child("group"), s.Resource.Group, strings.Join(msgs, ",")))
		}
	}
	return errs
}

// validateStatusUpdate: status.resourceVersion is a resourceVersion and,
// once set, stays; conditions are valid; Succeeded and Failed are never
// both true and, once true, stay true.
func validateStatusUpdate(obj, old runtime.Object) field.ErrorList {
	m, ok := obj.(*svmv1.StorageVersionMigration)
	om, ok2 := old.(*svmv1.StorageVersionMigration)
	if !ok || !ok2 {
		return nil
	}
	var errs field.ErrorList
	p := field.NewPath("status")
	if rv := m.Status.ResourceVersion; rv != "" {
		if _, err := resourceversion.CompareResourceVersion(rv, rv); err != nil {
			errs = append(errs, field.Invalid(p.Child("resourceVersion"), rv, err.Error()))
		}
	}
	errs = append(errs, metav1validation.ValidateConditions(m.Status.Conditions, p.Child("conditions"))...)
	if orv := om.Status.ResourceVersion; orv != "" && orv != m.Status.ResourceVersion {
		errs = append(errs, field.Invalid(p.Child("resourceVersion"), m.Status.ResourceVersion, "field is immutable"))
	}
	succeeded, failed := isTrue(m, svmv1.MigrationSucceeded), isTrue(m, svmv1.MigrationFailed)
	if succeeded && failed {
		errs = append(errs, field.Invalid(p.Child("conditions"), m.Status.Conditions, "Both success and failed conditions cannot be true at the same time"))
	}
	if isTrue(om, svmv1.MigrationSucceeded) && !succeeded {
		errs = append(errs, field.Invalid(p.Child("conditions"), m.Status.Conditions, "Success condition cannot be set to false once it is true"))
	}
	if isTrue(om, svmv1.MigrationFailed) && !failed {
		errs = append(errs, field.Invalid(p.Child("conditions"), m.Status.Conditions, "Failed condition cannot be set to false once it is true"))
	}
	return errs
}

func isTrue(m *svmv1.StorageVersionMigration, t svmv1.MigrationConditionType) bool {
	return apimeta.IsStatusConditionTrue(m.Status.Conditions, string(t))
}

// table is upstream's NAME RESOURCE STATUS: the status is the true one of
// Running, Succeeded and Failed, else Unknown.
var table = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "Resource", Type: "string", Description: "GroupResource to migrate"},
		{Name: "Status", Type: "string", Description: "Status of the migration"},
	},
	Row: func(obj runtime.Object) []interface{} {
		m, ok := obj.(*svmv1.StorageVersionMigration)
		if !ok {
			return nil
		}
		status := "Unknown"
		for _, c := range m.Status.Conditions {
			if c.Status != metav1.ConditionTrue {
				continue
			}
			switch svmv1.MigrationConditionType(c.Type) {
			case svmv1.MigrationRunning, svmv1.MigrationSucceeded, svmv1.MigrationFailed:
				status = c.Type
			}
		}
		return []interface{}{m.Name, m.Spec.Resource.String(), status}
	},
}
