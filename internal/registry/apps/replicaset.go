package apps

import (
	"context"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/registry/core"
)

func replicaSetResource() *registry.Resource {
	return &registry.Resource{
		GroupVersion: groupVersion,
		Name:         "replicasets",
		Singular:     "replicaset",
		Kind:         "ReplicaSet",
		ShortNames:   []string{"rs"},
		Categories:   []string{"all"},
		Namespaced:   true,
		New:          func() runtime.Object { return &appsv1.ReplicaSet{} },
		NewList:      func() runtime.Object { return &appsv1.ReplicaSetList{} },
		Status:       true,
		Scale: &registry.Scale{
			Get: func(obj runtime.Object) (int32, int32, string) {
				rs, ok := obj.(*appsv1.ReplicaSet)
				if !ok {
					return 0, 0, ""
				}
				return int32Value(rs.Spec.Replicas, 1), rs.Status.Replicas, scaleSelector(rs.Spec.Selector)
			},
			SetReplicas: func(obj runtime.Object, replicas int32) {
				if rs, ok := obj.(*appsv1.ReplicaSet); ok {
					rs.Spec.Replicas = &replicas
				}
			},
		},
		Strategy: registry.Strategy{
			PrepareForUpdate: prepareReplicaSetForUpdate,
			Default:          func(obj runtime.Object) { defaultReplicaSet(obj) },
			Validate: func(obj runtime.Object) field.ErrorList {
				rs, ok := obj.(*appsv1.ReplicaSet)
				if !ok {
					return wrongType(obj)
				}
				return validateReplicaSetSpec(&rs.Spec, nil, field.NewPath("spec"))
			},
			ValidateUpdate:       validateReplicaSetUpdate,
			ValidateStatusUpdate: validateReplicaSetStatusUpdate,
			WarningsOnCreate: func(obj runtime.Object) []string {
				if rs, ok := obj.(*appsv1.ReplicaSet); ok {
					return podNameWarning(rs.Name)
				}
				return nil
			},
		},
		Table: &registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				{Name: "Desired", Type: "integer", Description: appsv1.ReplicaSetSpec{}.SwaggerDoc()["replicas"]},
				{Name: "Current", Type: "integer", Description: appsv1.ReplicaSetStatus{}.SwaggerDoc()["replicas"]},
				{Name: "Ready", Type: "integer", Description: appsv1.ReplicaSetStatus{}.SwaggerDoc()["readyReplicas"]},
				registry.AgeColumn,
				containersColumn,
				imagesColumn,
				{Name: "Selector", Type: "string", Priority: 1, Description: appsv1.ReplicaSetSpec{}.SwaggerDoc()["selector"]},
			},
			Row: replicaSetRow,
		},
		Fields: replicaSetFields,
	}
}

// defaultReplicaSet is upstream's SetDefaults_ReplicaSet plus the pod
// template defaults.
func defaultReplicaSet(obj runtime.Object) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	if rs.Spec.Replicas == nil {
		rs.Spec.Replicas = ptrTo[int32](1)
	}
	core.DefaultPodTemplateSpec(&rs.Spec.Template)
}

// prepareReplicaSetForUpdate keeps status and bumps the generation on a
// spec change (after defaulting, so omitted defaults are no change).
func prepareReplicaSetForUpdate(_ context.Context, obj, old runtime.Object) {
	rs, ok1 := obj.(*appsv1.ReplicaSet)
	o, ok2 := old.(*appsv1.ReplicaSet)
	if !ok1 || !ok2 {
		return
	}
	defaultReplicaSet(rs)
	rs.Status = o.Status
	rs.Generation = o.Generation
	if !apiequality.Semantic.DeepEqual(rs.Spec, o.Spec) {
		rs.Generation = o.Generation + 1
	}
}

// validateReplicaSetSpec is upstream's ValidateReplicaSetSpec. (Upstream's
// empty-selector message says "deployment" here too; kept.)
func validateReplicaSetSpec(spec *appsv1.ReplicaSetSpec, oldSelector *metav1.LabelSelector, fldPath *field.Path) field.ErrorList {
	errs := validateNonnegative(spec.Replicas, fldPath.Child("replicas"))
	errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	sel, selErrs := validateSelector(spec.Selector, oldSelector, "deployment", fldPath.Child("selector"))
	errs = append(errs, selErrs...)
	errs = append(errs, validateReplicaSetTemplate(&spec.Template, sel, fldPath.Child("template"))...)
	return errs
}

// validateReplicaSetUpdate validates the new spec and keeps spec.selector
// immutable (apps/v1).
func validateReplicaSetUpdate(obj, old runtime.Object) field.ErrorList {
	rs, ok1 := obj.(*appsv1.ReplicaSet)
	o, ok2 := old.(*appsv1.ReplicaSet)
	if !ok1 || !ok2 {
		return wrongType(obj)
	}
	errs := validateReplicaSetSpec(&rs.Spec, o.Spec.Selector, field.NewPath("spec"))
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(rs.Spec.Selector, o.Spec.Selector, field.NewPath("spec", "selector"))...)
	return errs
}

// validateReplicaSetStatusUpdate is upstream's ValidateReplicaSetStatus.
func validateReplicaSetStatusUpdate(obj, _ runtime.Object) field.ErrorList {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return wrongType(obj)
	}
	s, p := &rs.Status, field.NewPath("status")
	errs := validateCounts(p, count{"replicas", s.Replicas}, count{"fullyLabeledReplicas", s.FullyLabeledReplicas},
		count{"readyReplicas", s.ReadyReplicas}, count{"availableReplicas", s.AvailableReplicas})
	errs = append(errs, validateNonnegative(s.TerminatingReplicas, p.Child("terminatingReplicas"))...)
	errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(s.ObservedGeneration, p.Child("observedGeneration"))...)
	errs = append(errs, validateNotAbove(p, s.Replicas, count{"fullyLabeledReplicas", s.FullyLabeledReplicas},
		count{"readyReplicas", s.ReadyReplicas}, count{"availableReplicas", s.AvailableReplicas})...)
	if s.AvailableReplicas > s.ReadyReplicas {
		errs = append(errs, field.Invalid(p.Child("availableReplicas"), s.AvailableReplicas, "cannot be greater than readyReplicas"))
	}
	return errs
}

// replicaSetRow is upstream's replicaset printer.
func replicaSetRow(obj runtime.Object) []interface{} {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return nil
	}
	names, images := containerCells(rs.Spec.Template.Spec.Containers)
	return []interface{}{
		rs.Name,
		int64(int32Value(rs.Spec.Replicas, 0)),
		int64(rs.Status.Replicas),
		int64(rs.Status.ReadyReplicas),
		registry.Age(rs),
		names, images, metav1.FormatLabelSelector(rs.Spec.Selector),
	}
}

// replicaSetFields adds status.replicas, the field selector upstream
// serves for replicasets.
func replicaSetFields(obj runtime.Object) fields.Set {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return fields.Set{}
	}
	return fields.Set{
		"metadata.name":      rs.Name,
		"metadata.namespace": rs.Namespace,
		"status.replicas":    strconv.Itoa(int(rs.Status.Replicas)),
	}
}
