package apps

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/registry/core"
)

func deploymentResource() *registry.Resource {
	return &registry.Resource{
		GroupVersion: groupVersion,
		Name:         "deployments",
		Singular:     "deployment",
		Kind:         "Deployment",
		ShortNames:   []string{"deploy"},
		Categories:   []string{"all"},
		Namespaced:   true,
		New:          func() runtime.Object { return &appsv1.Deployment{} },
		NewList:      func() runtime.Object { return &appsv1.DeploymentList{} },
		Status:       true,
		Scale: &registry.Scale{
			Get: func(obj runtime.Object) (int32, int32, string) {
				d, ok := obj.(*appsv1.Deployment)
				if !ok {
					return 0, 0, ""
				}
				return int32Value(d.Spec.Replicas, 1), d.Status.Replicas, scaleSelector(d.Spec.Selector)
			},
			SetReplicas: func(obj runtime.Object, replicas int32) {
				if d, ok := obj.(*appsv1.Deployment); ok {
					d.Spec.Replicas = &replicas
				}
			},
		},
		Strategy: registry.Strategy{
			PrepareForUpdate:       prepareDeploymentForUpdate,
			PrepareForStatusUpdate: prepareDeploymentForStatusUpdate,
			Default:                func(obj runtime.Object) { defaultDeployment(obj) },
			Validate: func(obj runtime.Object) field.ErrorList {
				d, ok := obj.(*appsv1.Deployment)
				if !ok {
					return wrongType(obj)
				}
				return validateDeploymentSpec(&d.Spec, nil, field.NewPath("spec"))
			},
			ValidateUpdate:       validateDeploymentUpdate,
			ValidateStatusUpdate: validateDeploymentStatusUpdate,
			WarningsOnCreate: func(obj runtime.Object) []string {
				if d, ok := obj.(*appsv1.Deployment); ok {
					return podNameWarning(d.Name)
				}
				return nil
			},
		},
		Table: &registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				readyColumn,
				{Name: "Up-to-date", Type: "string", Description: appsv1.DeploymentStatus{}.SwaggerDoc()["updatedReplicas"]},
				{Name: "Available", Type: "string", Description: appsv1.DeploymentStatus{}.SwaggerDoc()["availableReplicas"]},
				registry.AgeColumn,
				containersColumn,
				imagesColumn,
				{Name: "Selector", Type: "string", Priority: 1, Description: appsv1.DeploymentSpec{}.SwaggerDoc()["selector"]},
			},
			Row: deploymentRow,
		},
	}
}

// defaultDeployment is upstream's SetDefaults_Deployment plus the pod
// template defaults.
func defaultDeployment(obj runtime.Object) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return
	}
	if d.Spec.Replicas == nil {
		d.Spec.Replicas = ptrTo[int32](1)
	}
	st := &d.Spec.Strategy
	if st.Type == "" {
		st.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if st.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if st.RollingUpdate == nil {
			st.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		if st.RollingUpdate.MaxUnavailable == nil {
			st.RollingUpdate.MaxUnavailable = ptrTo(intstr.FromString("25%"))
		}
		if st.RollingUpdate.MaxSurge == nil {
			st.RollingUpdate.MaxSurge = ptrTo(intstr.FromString("25%"))
		}
	}
	if d.Spec.RevisionHistoryLimit == nil {
		d.Spec.RevisionHistoryLimit = ptrTo[int32](10)
	}
	if d.Spec.ProgressDeadlineSeconds == nil {
		d.Spec.ProgressDeadlineSeconds = ptrTo[int32](600)
	}
	core.DefaultPodTemplateSpec(&d.Spec.Template)
}

// prepareDeploymentForUpdate keeps status and bumps the generation when the
// spec or the annotations change: upstream counts annotation changes too,
// because the controller copies them to the ReplicaSets (its own revision
// annotation is written through /status, which does not bump).
func prepareDeploymentForUpdate(_ context.Context, obj, old runtime.Object) {
	d, ok1 := obj.(*appsv1.Deployment)
	o, ok2 := old.(*appsv1.Deployment)
	if !ok1 || !ok2 {
		return
	}
	// Default first, so that a write that omits defaulted fields does not
	// count as a spec change (upstream defaults while decoding).
	defaultDeployment(d)
	d.Status = o.Status
	d.Generation = o.Generation
	if !apiequality.Semantic.DeepEqual(d.Spec, o.Spec) || !apiequality.Semantic.DeepEqual(d.Annotations, o.Annotations) {
		d.Generation = o.Generation + 1
	}
}

// prepareDeploymentForStatusUpdate is the default status preparation, and
// like upstream it also keeps the labels: a status write may change
// annotations (the revision) but not labels.
func prepareDeploymentForStatusUpdate(ctx context.Context, obj, old runtime.Object) {
	d, ok1 := obj.(*appsv1.Deployment)
	o, ok2 := old.(*appsv1.Deployment)
	if !ok1 || !ok2 {
		return
	}
	registry.DefaultPrepareForStatusUpdate(ctx, obj, old)
	d.Labels = o.Labels
}

// validateDeploymentSpec is upstream's ValidateDeploymentSpec. oldSelector
// is the stored selector on update (nil on create).
func validateDeploymentSpec(spec *appsv1.DeploymentSpec, oldSelector *metav1.LabelSelector, fldPath *field.Path) field.ErrorList {
	errs := validateNonnegative(spec.Replicas, fldPath.Child("replicas"))
	sel, selErrs := validateSelector(spec.Selector, oldSelector, "deployment", fldPath.Child("selector"))
	errs = append(errs, selErrs...)
	errs = append(errs, validateReplicaSetTemplate(&spec.Template, sel, fldPath.Child("template"))...)
	errs = append(errs, validateDeploymentStrategy(&spec.Strategy, fldPath.Child("strategy"))...)
	errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	errs = append(errs, validateNonnegative(spec.RevisionHistoryLimit, fldPath.Child("revisionHistoryLimit"))...)
	if p := spec.ProgressDeadlineSeconds; p != nil {
		errs = append(errs, validateNonnegative(p, fldPath.Child("progressDeadlineSeconds"))...)
		if *p <= spec.MinReadySeconds {
			errs = append(errs, field.Invalid(fldPath.Child("progressDeadlineSeconds"), *p, "must be greater than minReadySeconds"))
		}
	}
	return errs
}

// validateDeploymentStrategy checks spec.strategy: RollingUpdate with
// valid, not-both-zero maxUnavailable/maxSurge, or Recreate without a
// rollingUpdate block.
func validateDeploymentStrategy(st *appsv1.DeploymentStrategy, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch st.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if st.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(fldPath.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		ru := st.RollingUpdate
		if ru == nil {
			// Defaulting fills it in; only a client bypassing it gets here.
			errs = append(errs, field.Required(fldPath.Child("rollingUpdate"), "this should be defaulted and never be nil"))
			break
		}
		p := fldPath.Child("rollingUpdate")
		errs = append(errs, validatePositiveIntOrPercent(ru.MaxUnavailable, p.Child("maxUnavailable"))...)
		errs = append(errs, validatePositiveIntOrPercent(ru.MaxSurge, p.Child("maxSurge"))...)
		if intOrPercentValue(ru.MaxUnavailable) == 0 && intOrPercentValue(ru.MaxSurge) == 0 {
			errs = append(errs, field.Invalid(p.Child("maxUnavailable"), intOrStringValue(ru.MaxUnavailable), "may not be 0 when `maxSurge` is 0"))
		}
		errs = append(errs, validateNotMoreThan100Percent(ru.MaxUnavailable, p.Child("maxUnavailable"))...)
	default:
		errs = append(errs, field.NotSupported(fldPath.Child("type"), st.Type, []string{
			string(appsv1.RecreateDeploymentStrategyType), string(appsv1.RollingUpdateDeploymentStrategyType)}))
	}
	return errs
}

// validateDeploymentUpdate validates the new spec and, as upstream does for
// apps/v1, keeps spec.selector immutable.
func validateDeploymentUpdate(obj, old runtime.Object) field.ErrorList {
	d, ok1 := obj.(*appsv1.Deployment)
	o, ok2 := old.(*appsv1.Deployment)
	if !ok1 || !ok2 {
		return wrongType(obj)
	}
	errs := validateDeploymentSpec(&d.Spec, o.Spec.Selector, field.NewPath("spec"))
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(d.Spec.Selector, o.Spec.Selector, field.NewPath("spec", "selector"))...)
	return errs
}

// validateDeploymentStatusUpdate is upstream's ValidateDeploymentStatus:
// counts non-negative and consistent, collisionCount never decremented.
func validateDeploymentStatusUpdate(obj, old runtime.Object) field.ErrorList {
	d, ok1 := obj.(*appsv1.Deployment)
	o, ok2 := old.(*appsv1.Deployment)
	if !ok1 || !ok2 {
		return wrongType(obj)
	}
	s, p := &d.Status, field.NewPath("status")
	var errs field.ErrorList
	errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(s.ObservedGeneration, p.Child("observedGeneration"))...)
	errs = append(errs, validateCounts(p,
		count{"replicas", s.Replicas}, count{"updatedReplicas", s.UpdatedReplicas}, count{"readyReplicas", s.ReadyReplicas},
		count{"availableReplicas", s.AvailableReplicas}, count{"unavailableReplicas", s.UnavailableReplicas})...)
	errs = append(errs, validateNonnegative(s.TerminatingReplicas, p.Child("terminatingReplicas"))...)
	errs = append(errs, validateNotAbove(p, s.Replicas,
		count{"updatedReplicas", s.UpdatedReplicas}, count{"readyReplicas", s.ReadyReplicas}, count{"availableReplicas", s.AvailableReplicas})...)
	if s.AvailableReplicas > s.ReadyReplicas {
		errs = append(errs, field.Invalid(p.Child("availableReplicas"), s.AvailableReplicas, "cannot be greater than readyReplicas"))
	}
	errs = append(errs, validateCollisionCount(s.CollisionCount, o.Status.CollisionCount, p.Child("collisionCount"))...)
	return errs
}

// deploymentRow is upstream's deployment printer.
func deploymentRow(obj runtime.Object) []interface{} {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return nil
	}
	names, images := containerCells(d.Spec.Template.Spec.Containers)
	return []interface{}{
		d.Name,
		fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, int32Value(d.Spec.Replicas, 0)),
		int64(d.Status.UpdatedReplicas),
		int64(d.Status.AvailableReplicas),
		registry.Age(d),
		names, images, selectorString(d.Spec.Selector),
	}
}
