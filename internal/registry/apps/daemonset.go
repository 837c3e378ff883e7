package apps

import (
	"context"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/registry/core"
)

func daemonSetResource() *registry.Resource {
	return &registry.Resource{
		GroupVersion: groupVersion,
		Name:         "daemonsets",
		Singular:     "daemonset",
		Kind:         "DaemonSet",
		ShortNames:   []string{"ds"},
		Categories:   []string{"all"},
		Namespaced:   true,
		New:          func() runtime.Object { return &appsv1.DaemonSet{} },
		NewList:      func() runtime.Object { return &appsv1.DaemonSetList{} },
		Status:       true,
		Strategy: registry.Strategy{
			PrepareForCreate: prepareDaemonSetForCreate,
			PrepareForUpdate: prepareDaemonSetForUpdate,
			Default:          func(obj runtime.Object) { defaultDaemonSet(obj) },
			Validate: func(obj runtime.Object) field.ErrorList {
				ds, ok := obj.(*appsv1.DaemonSet)
				if !ok {
					return wrongType(obj)
				}
				return validateDaemonSetSpec(&ds.Spec, nil, field.NewPath("spec"))
			},
			ValidateUpdate:       validateDaemonSetUpdate,
			ValidateStatusUpdate: validateDaemonSetStatusUpdate,
		},
		Table: &registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				{Name: "Desired", Type: "integer", Description: appsv1.DaemonSetStatus{}.SwaggerDoc()["desiredNumberScheduled"]},
				{Name: "Current", Type: "integer", Description: appsv1.DaemonSetStatus{}.SwaggerDoc()["currentNumberScheduled"]},
				{Name: "Ready", Type: "integer", Description: appsv1.DaemonSetStatus{}.SwaggerDoc()["numberReady"]},
				{Name: "Up-to-date", Type: "integer", Description: appsv1.DaemonSetStatus{}.SwaggerDoc()["updatedNumberScheduled"]},
				{Name: "Available", Type: "integer", Description: appsv1.DaemonSetStatus{}.SwaggerDoc()["numberAvailable"]},
				{Name: "Node Selector", Type: "string", Description: corev1.PodSpec{}.SwaggerDoc()["nodeSelector"]},
				registry.AgeColumn,
				containersColumn,
				imagesColumn,
				{Name: "Selector", Type: "string", Priority: 1, Description: appsv1.DaemonSetSpec{}.SwaggerDoc()["selector"]},
			},
			Row: daemonSetRow,
		},
	}
}

// defaultDaemonSet is upstream's SetDefaults_DaemonSet plus the pod
// template defaults.
func defaultDaemonSet(obj runtime.Object) {
	ds, ok := obj.(*appsv1.DaemonSet)
	if !ok {
		return
	}
	st := &ds.Spec.UpdateStrategy
	if st.Type == "" {
		st.Type = appsv1.RollingUpdateDaemonSetStrategyType
	}
	if st.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if st.RollingUpdate == nil {
			st.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		if st.RollingUpdate.MaxUnavailable == nil {
			st.RollingUpdate.MaxUnavailable = ptrTo(intstr.FromInt32(1))
		}
		if st.RollingUpdate.MaxSurge == nil {
			st.RollingUpdate.MaxSurge = ptrTo(intstr.FromInt32(0))
		}
	}
	if ds.Spec.RevisionHistoryLimit == nil {
		ds.Spec.RevisionHistoryLimit = ptrTo[int32](10)
	}
	core.DefaultPodTemplateSpec(&ds.Spec.Template)
}

// templateGeneration reads the deprecated.daemonset.template.generation
// annotation, in which apps/v1 carries upstream's internal
// spec.templateGeneration; 0 when absent or not a number.
func templateGeneration(ds *appsv1.DaemonSet) int64 {
	g, err := strconv.ParseInt(ds.Annotations[appsv1.DeprecatedTemplateGeneration], 10, 64)
	if err != nil {
		return 0
	}
	return g
}

func setTemplateGeneration(ds *appsv1.DaemonSet, g int64) {
	if ds.Annotations == nil {
		ds.Annotations = map[string]string{}
	}
	ds.Annotations[appsv1.DeprecatedTemplateGeneration] = strconv.FormatInt(g, 10)
}

// prepareDaemonSetForCreate is the default preparation plus a template
// generation of at least 1, as upstream shows it in the annotation.
func prepareDaemonSetForCreate(ctx context.Context, obj runtime.Object) {
	ds, ok := obj.(*appsv1.DaemonSet)
	if !ok {
		return
	}
	registry.DefaultPrepareForCreate(ctx, obj)
	setTemplateGeneration(ds, max(templateGeneration(ds), 1))
}

// prepareDaemonSetForUpdate keeps status and the template generation a
// client may not set; a template change bumps both the template generation
// and metadata.generation, any other spec change only the latter.
func prepareDaemonSetForUpdate(_ context.Context, obj, old runtime.Object) {
	ds, ok1 := obj.(*appsv1.DaemonSet)
	o, ok2 := old.(*appsv1.DaemonSet)
	if !ok1 || !ok2 {
		return
	}
	defaultDaemonSet(ds)
	ds.Status = o.Status
	ds.Generation = o.Generation
	tg := templateGeneration(o)
	switch {
	case !apiequality.Semantic.DeepEqual(ds.Spec.Template, o.Spec.Template):
		tg++
		ds.Generation = o.Generation + 1
	case !apiequality.Semantic.DeepEqual(ds.Spec, o.Spec):
		ds.Generation = o.Generation + 1
	}
	setTemplateGeneration(ds, tg)
}

// validateDaemonSetSpec is upstream's ValidateDaemonSetSpec.
func validateDaemonSetSpec(spec *appsv1.DaemonSetSpec, oldSelector *metav1.LabelSelector, fldPath *field.Path) field.ErrorList {
	sel, errs := validateSelector(spec.Selector, oldSelector, "daemonset", fldPath.Child("selector"))
	errs = append(errs, validateReplicatedTemplate(&spec.Template, sel, fldPath.Child("template"))...)
	errs = append(errs, validateNoActiveDeadline(&spec.Template, fldPath.Child("template"), "")...)
	errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	errs = append(errs, validateDaemonSetUpdateStrategy(&spec.UpdateStrategy, fldPath.Child("updateStrategy"))...)
	errs = append(errs, validateNonnegative(spec.RevisionHistoryLimit, fldPath.Child("revisionHistoryLimit"))...)
	return errs
}

// validateDaemonSetUpdateStrategy checks spec.updateStrategy: OnDelete, or
// RollingUpdate with exactly one of maxUnavailable and maxSurge non-zero.
func validateDaemonSetUpdateStrategy(st *appsv1.DaemonSetUpdateStrategy, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch st.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
	case appsv1.RollingUpdateDaemonSetStrategyType:
		ru := st.RollingUpdate
		if ru == nil {
			errs = append(errs, field.Required(fldPath.Child("rollingUpdate"), ""))
			break
		}
		p := fldPath.Child("rollingUpdate")
		errs = append(errs, validatePositiveIntOrPercent(ru.MaxUnavailable, p.Child("maxUnavailable"))...)
		errs = append(errs, validateNotMoreThan100Percent(ru.MaxUnavailable, p.Child("maxUnavailable"))...)
		errs = append(errs, validatePositiveIntOrPercent(ru.MaxSurge, p.Child("maxSurge"))...)
		errs = append(errs, validateNotMoreThan100Percent(ru.MaxSurge, p.Child("maxSurge"))...)
		hasUnavailable := intOrPercentValue(ru.MaxUnavailable) != 0
		hasSurge := intOrPercentValue(ru.MaxSurge) != 0
		switch {
		case hasUnavailable && hasSurge:
			errs = append(errs, field.Invalid(p.Child("maxSurge"), intOrStringValue(ru.MaxSurge), "may not be set when maxUnavailable is non-zero"))
		case !hasUnavailable && !hasSurge:
			errs = append(errs, field.Invalid(p.Child("maxUnavailable"), intOrStringValue(ru.MaxUnavailable), "cannot be 0 when maxSurge is 0"))
		}
	default:
		errs = append(errs, field.NotSupported(fldPath.Child("type"), st.Type, []string{
			string(appsv1.RollingUpdateDaemonSetStrategyType), string(appsv1.OnDeleteDaemonSetStrategyType)}))
	}
	return errs
}

// validateDaemonSetUpdate validates the new spec and keeps spec.selector
// immutable (apps/v1).
func validateDaemonSetUpdate(obj, old runtime.Object) field.ErrorList {
	ds, ok1 := obj.(*appsv1.DaemonSet)
	o, ok2 := old.(*appsv1.DaemonSet)
	if !ok1 || !ok2 {
		return wrongType(obj)
	}
	errs := validateDaemonSetSpec(&ds.Spec, o.Spec.Selector, field.NewPath("spec"))
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(ds.Spec.Selector, o.Spec.Selector, field.NewPath("spec", "selector"))...)
	return errs
}

// validateDaemonSetStatusUpdate is upstream's ValidateDaemonSetStatusUpdate.
func validateDaemonSetStatusUpdate(obj, old runtime.Object) field.ErrorList {
	ds, ok1 := obj.(*appsv1.DaemonSet)
	o, ok2 := old.(*appsv1.DaemonSet)
	if !ok1 || !ok2 {
		return wrongType(obj)
	}
	s, p := &ds.Status, field.NewPath("status")
	errs := validateCounts(p,
		count{"currentNumberScheduled", s.CurrentNumberScheduled}, count{"numberMisscheduled", s.NumberMisscheduled},
		count{"desiredNumberScheduled", s.DesiredNumberScheduled}, count{"numberReady", s.NumberReady},
		count{"updatedNumberScheduled", s.UpdatedNumberScheduled}, count{"numberAvailable", s.NumberAvailable},
		count{"numberUnavailable", s.NumberUnavailable})
	errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(s.ObservedGeneration, p.Child("observedGeneration"))...)
	errs = append(errs, validateCollisionCount(s.CollisionCount, o.Status.CollisionCount, p.Child("collisionCount"))...)
	return errs
}

// daemonSetRow is upstream's daemonset printer.
func daemonSetRow(obj runtime.Object) []interface{} {
	ds, ok := obj.(*appsv1.DaemonSet)
	if !ok {
		return nil
	}
	s := &ds.Status
	names, images := containerCells(ds.Spec.Template.Spec.Containers)
	return []interface{}{
		ds.Name,
		int64(s.DesiredNumberScheduled),
		int64(s.CurrentNumberScheduled),
		int64(s.NumberReady),
		int64(s.UpdatedNumberScheduled),
		int64(s.NumberAvailable),
		labels.FormatLabels(ds.Spec.Template.Spec.NodeSelector),
		registry.Age(ds),
		names, images, metav1.FormatLabelSelector(ds.Spec.Selector),
	}
}
