package apps

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/registry/core"
)

func statefulSetResource() *registry.Resource {
	return &registry.Resource{
		GroupVersion: groupVersion,
		Name:         "statefulsets",
		Singular:     "statefulset",
		Kind:         "StatefulSet",
		ShortNames:   []string{"sts"},
		Categories:   []string{"all"},
		Namespaced:   true,
		New:          func() runtime.Object { return &appsv1.StatefulSet{} },
		NewList:      func() runtime.Object { return &appsv1.StatefulSetList{} },
		Status:       true,
		Scale: &registry.Scale{
			Get: func(obj runtime.Object) (int32, int32, string) {
				s, ok := obj.(*appsv1.StatefulSet)
				if !ok {
					return 0, 0, ""
				}
				return int32Value(s.Spec.Replicas, 1), s.Status.Replicas, scaleSelector(s.Spec.Selector)
			},
			SetReplicas: func(obj runtime.Object, replicas int32) {
				if s, ok := obj.(*appsv1.StatefulSet); ok {
					s.Spec.Replicas = &replicas
				}
			},
		},
		Strategy: registry.Strategy{
			PrepareForUpdate: prepareStatefulSetForUpdate,
			Default:          func(obj runtime.Object) { defaultStatefulSet(obj) },
			Validate: func(obj runtime.Object) field.ErrorList {
				s, ok := obj.(*appsv1.StatefulSet)
				if !ok {
					return wrongType(obj)
				}
				return validateStatefulSetSpec(&s.Spec, nil, field.NewPath("spec"))
			},
			ValidateUpdate:       validateStatefulSetUpdate,
			ValidateStatusUpdate: validateStatefulSetStatusUpdate,
		},
		Table: &registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				readyColumn,
				registry.AgeColumn,
				containersColumn,
				imagesColumn,
			},
			Row: statefulSetRow,
		},
	}
}

// defaultStatefulSet is upstream's SetDefaults_StatefulSet, the defaults of
// each volumeClaimTemplate (as upstream's generated defaulters apply the
// PersistentVolumeClaim defaults to them) and the pod template defaults.
//
// Differs from upstream: rollingUpdate.maxUnavailable is not defaulted (it
// sits behind the MaxUnavailableStatefulSet gate).
func defaultStatefulSet(obj runtime.Object) {
	s, ok := obj.(*appsv1.StatefulSet)
	if !ok {
		return
	}
	spec := &s.Spec
	if spec.PodManagementPolicy == "" {
		spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	}
	if spec.UpdateStrategy.Type == "" {
		spec.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
		if spec.UpdateStrategy.RollingUpdate == nil {
			spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
		}
	}
	if ru := spec.UpdateStrategy.RollingUpdate; spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType &&
		ru != nil && ru.Partition == nil {
		ru.Partition = ptrTo[int32](0)
	}
	if spec.PersistentVolumeClaimRetentionPolicy == nil {
		spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	if p := spec.PersistentVolumeClaimRetentionPolicy; p.WhenDeleted == "" {
		p.WhenDeleted = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if p := spec.PersistentVolumeClaimRetentionPolicy; p.WhenScaled == "" {
		p.WhenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if spec.Replicas == nil {
		spec.Replicas = ptrTo[int32](1)
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = ptrTo[int32](10)
	}
	for i := range spec.VolumeClaimTemplates {
		pvc := &spec.VolumeClaimTemplates[i]
		if pvc.Spec.VolumeMode == nil {
			pvc.Spec.VolumeMode = ptrTo(corev1.PersistentVolumeFilesystem)
		}
		if pvc.Status.Phase == "" {
			pvc.Status.Phase = corev1.ClaimPending
		}
	}
	core.DefaultPodTemplateSpec(&spec.Template)
}

// prepareStatefulSetForUpdate keeps status and bumps the generation on a
// spec change (after defaulting, so omitted defaults are no change).
func prepareStatefulSetForUpdate(_ context.Context, obj, old runtime.Object) {
	s, ok1 := obj.(*appsv1.StatefulSet)
	o, ok2 := old.(*appsv1.StatefulSet)
	if !ok1 || !ok2 {
		return
	}
	defaultStatefulSet(s)
	s.Status = o.Status
	s.Generation = o.Generation
	if !apiequality.Semantic.DeepEqual(s.Spec, o.Spec) {
		s.Generation = o.Generation + 1
	}
}

// validateStatefulSetSpec is upstream's ValidateStatefulSetSpec.
func validateStatefulSetSpec(spec *appsv1.StatefulSetSpec, oldSelector *metav1.LabelSelector, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch spec.PodManagementPolicy {
	case "":
		errs = append(errs, field.Required(fldPath.Child("podManagementPolicy"), ""))
	case appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement:
	default:
		errs = append(errs, field.Invalid(fldPath.Child("podManagementPolicy"), spec.PodManagementPolicy,
			fmt.Sprintf("must be '%s' or '%s'", appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement)))
	}
	errs = append(errs, validateStatefulSetUpdateStrategy(&spec.UpdateStrategy, fldPath.Child("updateStrategy"))...)
	errs = append(errs, validatePVCRetentionPolicy(spec.PersistentVolumeClaimRetentionPolicy, fldPath.Child("persistentVolumeClaimRetentionPolicy"))...)
	errs = append(errs, validateNonnegative(spec.Replicas, fldPath.Child("replicas"))...)
	if spec.Ordinals != nil {
		errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(spec.Ordinals.Start), fldPath.Child("ordinals", "start"))...)
	}
	sel, selErrs := validateSelector(spec.Selector, oldSelector, "statefulset", fldPath.Child("selector"))
	errs = append(errs, selErrs...)
	errs = append(errs, validateStatefulSetTemplate(spec, sel, fldPath)...)
	errs = append(errs, validateVolumeClaimTemplates(spec.VolumeClaimTemplates, fldPath.Child("volumeClaimTemplates"))...)
	errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	errs = append(errs, validateNonnegative(spec.RevisionHistoryLimit, fldPath.Child("revisionHistoryLimit"))...)
	return errs
}

func validateStatefulSetUpdateStrategy(st *appsv1.StatefulSetUpdateStrategy, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch st.Type {
	case "":
		errs = append(errs, field.Required(fldPath, ""))
	case appsv1.OnDeleteStatefulSetStrategyType:
		if st.RollingUpdate != nil {
			errs = append(errs, field.Invalid(fldPath.Child("rollingUpdate"), st.RollingUpdate,
				fmt.Sprintf("only allowed for updateStrategy '%s'", appsv1.RollingUpdateStatefulSetStrategyType)))
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		ru := st.RollingUpdate
		if ru == nil {
			break
		}
		p := fldPath.Child("rollingUpdate")
		errs = append(errs, validateNonnegative(ru.Partition, p.Child("partition"))...)
		if ru.MaxUnavailable != nil {
			errs = append(errs, validatePositiveIntOrPercent(ru.MaxUnavailable, p.Child("maxUnavailable"))...)
			if intOrPercentValue(ru.MaxUnavailable) == 0 {
				errs = append(errs, field.Invalid(p.Child("maxUnavailable"), intOrStringValue(ru.MaxUnavailable), "cannot be 0"))
			}
			errs = append(errs, validateNotMoreThan100Percent(ru.MaxUnavailable, p.Child("maxUnavailable"))...)
		}
	default:
		// Recreate is alpha upstream (StatefulSetRecreateStrategy gate, off
		// by default); skiff does not serve it.
		errs = append(errs, field.Invalid(fldPath, st.Type, fmt.Sprintf("must be '%s' or '%s'",
			appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType)))
	}
	return errs
}

func validatePVCRetentionPolicy(p *appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy, fldPath *field.Path) field.ErrorList {
	if p == nil {
		return nil
	}
	valid := []string{string(appsv1.RetainPersistentVolumeClaimRetentionPolicyType), string(appsv1.DeletePersistentVolumeClaimRetentionPolicyType)}
	var errs field.ErrorList
	for _, f := range []struct {
		name string
		v    appsv1.PersistentVolumeClaimRetentionPolicyType
	}{{"whenDeleted", p.WhenDeleted}, {"whenScaled", p.WhenScaled}} {
		switch f.v {
		case appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType:
		default:
			errs = append(errs, field.NotSupported(fldPath.Child(f.name), f.v, valid))
		}
	}
	return errs
}

// validateStatefulSetTemplate checks spec.template: selector match, the
// core pod template rules, restartPolicy Always, no activeDeadlineSeconds.
//
// Upstream skips pod spec validation for statefulsets because containers
// mount volumes that only the volumeClaimTemplates provide. skiff validates
// the pod spec with a PersistentVolumeClaim volume added for each claim
// template the pod spec does not already name, so mounts resolve.
func validateStatefulSetTemplate(spec *appsv1.StatefulSetSpec, sel labels.Selector, fldPath *field.Path) field.ErrorList {
	t := &spec.Template
	tp := fldPath.Child("template")
	var errs field.ErrorList
	if sel != nil && !sel.Empty() && !sel.Matches(labels.Set(t.Labels)) {
		errs = append(errs, field.Invalid(tp.Child("metadata", "labels"), t.Labels, selectorMismatchMsg))
	}
	errs = append(errs, core.ValidatePodTemplateSpec(templateWithClaims(t, spec.VolumeClaimTemplates), tp)...)
	errs = append(errs, validateRestartPolicyAlways(t, errs, tp)...)
	errs = append(errs, validateNoActiveDeadline(t, tp, "")...)
	return errs
}

// templateWithClaims returns t, or a copy of it with a volume for each
// claim template the pod spec does not define. Claim templates whose names
// cannot be volume names (DNS labels) get none: their names are reported on
// volumeClaimTemplates.
func templateWithClaims(t *corev1.PodTemplateSpec, claims []corev1.PersistentVolumeClaim) *corev1.PodTemplateSpec {
	if len(claims) == 0 {
		return t
	}
	have := make(map[string]bool, len(t.Spec.Volumes))
	for _, v := range t.Spec.Volumes {
		have[v.Name] = true
	}
	c := t.DeepCopy()
	for _, pvc := range claims {
		if have[pvc.Name] || len(validation.IsDNS1123Label(pvc.Name)) != 0 {
			continue
		}
		have[pvc.Name] = true
		c.Spec.Volumes = append(c.Spec.Volumes, corev1.Volume{
			Name: pvc.Name,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
				ClaimName: pvc.Name,
			}},
		})
	}
	return c
}

// validateVolumeClaimTemplates checks that each claim template has a name
// usable in the claims' names ("<template>-<statefulset>-<ordinal>").
func validateVolumeClaimTemplates(claims []corev1.PersistentVolumeClaim, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := make(map[string]bool, len(claims))
	for i, pvc := range claims {
		p := fldPath.Index(i).Child("metadata", "name")
		switch {
		case pvc.Name == "":
			errs = append(errs, field.Required(p, ""))
		case seen[pvc.Name]:
			errs = append(errs, field.Duplicate(p, pvc.Name))
		default:
			for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(pvc.Name, false) {
				errs = append(errs, field.Invalid(p, pvc.Name, msg))
			}
		}
		seen[pvc.Name] = true
	}
	return errs
}

// statefulSetForbiddenMsg lists the spec fields an update may change,
// quoted as upstream's error message does.
const statefulSetForbiddenMsg = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"

// validateStatefulSetUpdate validates the new spec and forbids changes to
// any spec field but the mutable ones (upstream's ValidateStatefulSetUpdate).
func validateStatefulSetUpdate(obj, old runtime.Object) field.ErrorList {
	s, ok1 := obj.(*appsv1.StatefulSet)
	o, ok2 := old.(*appsv1.StatefulSet)
	if !ok1 || !ok2 {
		return wrongType(obj)
	}
	errs := validateStatefulSetSpec(&s.Spec, o.Spec.Selector, field.NewPath("spec"))
	clone := s.Spec.DeepCopy()
	clone.Replicas = o.Spec.Replicas
	clone.Ordinals = o.Spec.Ordinals
	clone.Template = o.Spec.Template
	clone.UpdateStrategy = o.Spec.UpdateStrategy
	clone.RevisionHistoryLimit = o.Spec.RevisionHistoryLimit
	clone.PersistentVolumeClaimRetentionPolicy = o.Spec.PersistentVolumeClaimRetentionPolicy
	clone.MinReadySeconds = o.Spec.MinReadySeconds
	if !apiequality.Semantic.DeepEqual(*clone, o.Spec) {
		errs = append(errs, field.Forbidden(field.NewPath("spec"), statefulSetForbiddenMsg))
	}
	return errs
}

// validateStatefulSetStatusUpdate is upstream's ValidateStatefulSetStatus.
func validateStatefulSetStatusUpdate(obj, old runtime.Object) field.ErrorList {
	s, ok1 := obj.(*appsv1.StatefulSet)
	o, ok2 := old.(*appsv1.StatefulSet)
	if !ok1 || !ok2 {
		return wrongType(obj)
	}
	st, p := &s.Status, field.NewPath("status")
	errs := validateCounts(p, count{"replicas", st.Replicas}, count{"readyReplicas", st.ReadyReplicas},
		count{"currentReplicas", st.CurrentReplicas}, count{"updatedReplicas", st.UpdatedReplicas},
		count{"availableReplicas", st.AvailableReplicas})
	errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(st.ObservedGeneration, p.Child("observedGeneration"))...)
	errs = append(errs, validateNotAbove(p, st.Replicas, count{"readyReplicas", st.ReadyReplicas},
		count{"currentReplicas", st.CurrentReplicas}, count{"updatedReplicas", st.UpdatedReplicas},
		count{"availableReplicas", st.AvailableReplicas})...)
	if st.AvailableReplicas > st.ReadyReplicas {
		errs = append(errs, field.Invalid(p.Child("availableReplicas"), st.AvailableReplicas, "cannot be greater than status.readyReplicas"))
	}
	errs = append(errs, validateCollisionCount(st.CollisionCount, o.Status.CollisionCount, p.Child("collisionCount"))...)
	return errs
}

// statefulSetRow is upstream's statefulset printer.
func statefulSetRow(obj runtime.Object) []interface{} {
	s, ok := obj.(*appsv1.StatefulSet)
	if !ok {
		return nil
	}
	names, images := containerCells(s.Spec.Template.Spec.Containers)
	return []interface{}{
		s.Name,
		fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, int32Value(s.Spec.Replicas, 0)),
		registry.Age(s),
		names, images,
	}
}
