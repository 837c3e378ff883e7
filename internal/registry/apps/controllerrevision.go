package apps

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// controllerRevisionResource: immutable snapshots of a workload's template
// that the statefulset and daemonset controllers keep for rollbacks. No
// status, no spec: generation stays as the client sent it, as upstream.
func controllerRevisionResource() *registry.Resource {
	return &registry.Resource{
		GroupVersion: groupVersion,
		Name:         "controllerrevisions",
		Singular:     "controllerrevision",
		Kind:         "ControllerRevision",
		Namespaced:   true,
		New:          func() runtime.Object { return &appsv1.ControllerRevision{} },
		NewList:      func() runtime.Object { return &appsv1.ControllerRevisionList{} },
		Strategy: registry.Strategy{
			Validate: func(obj runtime.Object) field.ErrorList {
				cr, ok := obj.(*appsv1.ControllerRevision)
				if !ok {
					return wrongType(obj)
				}
				return validateControllerRevision(cr)
			},
			ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
				cr, ok1 := obj.(*appsv1.ControllerRevision)
				o, ok2 := old.(*appsv1.ControllerRevision)
				if !ok1 || !ok2 {
					return wrongType(obj)
				}
				errs := validateControllerRevision(cr)
				return append(errs, apimachineryvalidation.ValidateImmutableField(cr.Data, o.Data, field.NewPath("data"))...)
			},
		},
		Table: &registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				{Name: "Controller", Type: "string", Description: "Controller of the object"},
				{Name: "Revision", Type: "string", Description: appsv1.ControllerRevision{}.SwaggerDoc()["revision"]},
				registry.AgeColumn,
			},
			Row: controllerRevisionRow,
		},
	}
}

// validateControllerRevision is upstream's ValidateControllerRevision: data
// is required and revision is non-negative.
func validateControllerRevision(cr *appsv1.ControllerRevision) field.ErrorList {
	var errs field.ErrorList
	if cr.Data.Raw == nil && cr.Data.Object == nil {
		errs = append(errs, field.Required(field.NewPath("data"), "data is mandatory"))
	}
	return append(errs, apimachineryvalidation.ValidateNonnegativeField(cr.Revision, field.NewPath("revision"))...)
}

// controllerRevisionRow is upstream's printer: the controller as
// "kind.group/name" in lower case, "<none>" without one.
func controllerRevisionRow(obj runtime.Object) []interface{} {
	cr, ok := obj.(*appsv1.ControllerRevision)
	if !ok {
		return nil
	}
	controller := "<none>"
	if ref := metav1.GetControllerOf(cr); ref != nil {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			// Upstream fails the whole table here; one row is enough.
			controller = ref.Name
		} else if gk := gv.WithKind(ref.Kind).GroupKind(); gk.Empty() {
			controller = ref.Name
		} else {
			controller = strings.ToLower(gk.String()) + "/" + ref.Name
		}
	}
	return []interface{}{cr.Name, controller, cr.Revision, registry.Age(cr)}
}
