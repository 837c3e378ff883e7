package core

import (
	"context"
	"fmt"
	"maps"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// ReplicationControllers describes core/v1 replicationcontrollers ("rc"):
// namespaced, with status and scale subresources, upstream's defaults
// (selector and labels from the template's labels, one replica),
// validation and `kubectl get` columns. The replication manager
// (internal/controller/replication) keeps their pods and status.
//
// Unlike upstream, a DELETE without a propagation policy does not orphan
// the pods (upstream's v1 default for this one resource): the garbage
// collector deletes them in the background, as for every other owner.
func ReplicationControllers() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Name:         "replicationcontrollers",
		Singular:     "replicationcontroller",
		Kind:         "ReplicationController",
		ShortNames:   []string{"rc"},
		Categories:   []string{"all"},
		Namespaced:   true,
		New:          func() runtime.Object { return &corev1.ReplicationController{} },
		NewList:      func() runtime.Object { return &corev1.ReplicationControllerList{} },
		Status:       true,
		Scale: &registry.Scale{
			Get: func(obj runtime.Object) (int32, int32, string) {
				rc, ok := obj.(*corev1.ReplicationController)
				if !ok {
					return 0, 0, ""
				}
				replicas := int32(1)
				if rc.Spec.Replicas != nil {
					replicas = *rc.Spec.Replicas
				}
				return replicas, rc.Status.Replicas, labels.SelectorFromSet(rc.Spec.Selector).String()
			},
			SetReplicas: func(obj runtime.Object, replicas int32) {
				if rc, ok := obj.(*corev1.ReplicationController); ok {
					rc.Spec.Replicas = &replicas
				}
			},
		},
		Strategy: registry.Strategy{
			PrepareForUpdate: prepareReplicationControllerForUpdate,
			Default:          defaultReplicationControllerObject,
			Validate: func(obj runtime.Object) field.ErrorList {
				rc, ok := obj.(*corev1.ReplicationController)
				if !ok {
					return metaWrongType(obj, "v1.ReplicationController")
				}
				return validateReplicationControllerSpec(&rc.Spec, field.NewPath("spec"))
			},
			// The selector may change: only apps/v1 made it immutable.
			ValidateUpdate: func(obj, _ runtime.Object) field.ErrorList {
				rc, ok := obj.(*corev1.ReplicationController)
				if !ok {
					return metaWrongType(obj, "v1.ReplicationController")
				}
				return validateReplicationControllerSpec(&rc.Spec, field.NewPath("spec"))
			},
			ValidateStatusUpdate: func(obj, _ runtime.Object) field.ErrorList {
				rc, ok := obj.(*corev1.ReplicationController)
				if !ok {
					return metaWrongType(obj, "v1.ReplicationController")
				}
				return validateReplicationControllerStatus(&rc.Status, field.NewPath("status"))
			},
			WarningsOnCreate: func(obj runtime.Object) []string {
				rc, ok := obj.(*corev1.ReplicationController)
				if !ok {
					return nil
				}
				if msgs := validation.IsDNS1123Label(rc.Name); len(msgs) != 0 {
					return []string{fmt.Sprintf("metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: %v", msgs)}
				}
				return nil
			},
		},
		Table: &registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				{Name: "Desired", Type: "integer", Description: corev1.ReplicationControllerSpec{}.SwaggerDoc()["replicas"]},
				{Name: "Current", Type: "integer", Description: corev1.ReplicationControllerStatus{}.SwaggerDoc()["replicas"]},
				{Name: "Ready", Type: "integer", Description: corev1.ReplicationControllerStatus{}.SwaggerDoc()["readyReplicas"]},
				registry.AgeColumn,
				{Name: "Containers", Type: "string", Priority: 1, Description: "Names of each container in the template."},
				{Name: "Images", Type: "string", Priority: 1, Description: "Images referenced by each container in the template."},
				{Name: "Selector", Type: "string", Priority: 1, Description: corev1.ReplicationControllerSpec{}.SwaggerDoc()["selector"]},
			},
			Row: replicationControllerRow,
		},
		Fields: func(obj runtime.Object) fields.Set {
			rc, ok := obj.(*corev1.ReplicationController)
			if !ok {
				return fields.Set{}
			}
			s := metaFields(&rc.ObjectMeta, true)
			s["status.replicas"] = strconv.Itoa(int(rc.Status.Replicas))
			return s
		},
	}
}

func defaultReplicationControllerObject(obj runtime.Object) {
	if rc, ok := obj.(*corev1.ReplicationController); ok {
		defaultReplicationController(rc)
	}
}

// defaultReplicationController is upstream's SetDefaults_ReplicationController
// (selector, then labels, from the template's labels when those are set and
// these empty), the declarative replicas default of 1, and the template's
// pod spec defaults.
func defaultReplicationController(rc *corev1.ReplicationController) {
	if t := rc.Spec.Template; t != nil && t.Labels != nil {
		// Copies: the three maps must not change together later.
		if len(rc.Spec.Selector) == 0 {
			rc.Spec.Selector = maps.Clone(t.Labels)
		}
		if len(rc.Labels) == 0 {
			rc.Labels = maps.Clone(t.Labels)
		}
	}
	if rc.Spec.Replicas == nil {
		one := int32(1)
		rc.Spec.Replicas = &one
	}
	DefaultPodTemplateSpec(rc.Spec.Template)
}

// prepareReplicationControllerForUpdate keeps status and the stored
// generation, and bumps the generation when the spec changed (compared
// after defaulting, so that an omitted default is no change).
func prepareReplicationControllerForUpdate(_ context.Context, obj, old runtime.Object) {
	rc, ok1 := obj.(*corev1.ReplicationController)
	o, ok2 := old.(*corev1.ReplicationController)
	if !ok1 || !ok2 {
		return
	}
	defaultReplicationController(rc)
	rc.Status = o.Status
	rc.Generation = o.Generation
	if !apiequality.Semantic.DeepEqual(rc.Spec, o.Spec) {
		rc.Generation = o.Generation + 1
	}
}

// validateReplicationControllerSpec is upstream's
// ValidateReplicationControllerSpec: a non-empty selector, replicas and
// minReadySeconds not negative, and a template that the selector selects,
// that restarts always and that has no activeDeadlineSeconds.
func validateReplicationControllerSpec(spec *corev1.ReplicationControllerSpec, fldPath *field.Path) field.ErrorList {
	errs := apimachineryvalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))
	selector := labels.Set(spec.Selector).AsSelector()
	if selector.Empty() {
		errs = append(errs, field.Required(fldPath.Child("selector"), ""))
	}
	if spec.Replicas == nil {
		errs = append(errs, field.Required(fldPath.Child("replicas"), ""))
	} else {
		errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(*spec.Replicas), fldPath.Child("replicas"))...)
	}
	tp := fldPath.Child("template")
	t := spec.Template
	if t == nil {
		return append(errs, field.Required(tp, ""))
	}
	if !selector.Empty() && !selector.Matches(labels.Set(t.Labels)) {
		errs = append(errs, field.Invalid(tp.Child("metadata", "labels"), t.Labels, "`selector` does not match template `labels`"))
	}
	errs = append(errs, ValidatePodTemplateSpec(t, tp)...)
	// As upstream, this comes on top of the pod spec's own restartPolicy
	// check, which may have reported the same value already.
	if t.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(tp.Child("spec", "restartPolicy"), t.Spec.RestartPolicy,
			[]corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if t.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(tp.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in ReplicationController is not Supported"))
	}
	return errs
}

// validateReplicationControllerStatus is upstream's
// ValidateReplicationControllerStatus: no negative counts, none above
// status.replicas, and no more available than ready replicas.
func validateReplicationControllerStatus(s *corev1.ReplicationControllerStatus, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, c := range []struct {
		name  string
		value int64
	}{
		{"replicas", int64(s.Replicas)},
		{"fullyLabeledReplicas", int64(s.FullyLabeledReplicas)},
		{"readyReplicas", int64(s.ReadyReplicas)},
		{"availableReplicas", int64(s.AvailableReplicas)},
		{"observedGeneration", s.ObservedGeneration},
	} {
		errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(c.value, fldPath.Child(c.name))...)
	}
	const msg = "cannot be greater than status.replicas"
	if s.FullyLabeledReplicas > s.Replicas {
		errs = append(errs, field.Invalid(fldPath.Child("fullyLabeledReplicas"), s.FullyLabeledReplicas, msg))
	}
	if s.ReadyReplicas > s.Replicas {
		errs = append(errs, field.Invalid(fldPath.Child("readyReplicas"), s.ReadyReplicas, msg))
	}
	if s.AvailableReplicas > s.Replicas {
		errs = append(errs, field.Invalid(fldPath.Child("availableReplicas"), s.AvailableReplicas, msg))
	}
	if s.AvailableReplicas > s.ReadyReplicas {
		errs = append(errs, field.Invalid(fldPath.Child("availableReplicas"), s.AvailableReplicas, "cannot be greater than readyReplicas"))
	}
	return errs
}

// replicationControllerRow is upstream's replicationcontroller printer,
// the -o wide cells included.
func replicationControllerRow(obj runtime.Object) []interface{} {
	rc, ok := obj.(*corev1.ReplicationController)
	if !ok {
		return []interface{}{"", int64(0), int64(0), int64(0), "", "", "", ""}
	}
	var desired int32
	if rc.Spec.Replicas != nil {
		desired = *rc.Spec.Replicas
	}
	var names, images string
	if rc.Spec.Template != nil {
		names, images = containerCells(rc.Spec.Template.Spec.Containers)
	}
	return []interface{}{
		rc.Name, int64(desired), int64(rc.Status.Replicas), int64(rc.Status.ReadyReplicas), registry.Age(rc),
		names, images, labels.FormatLabels(rc.Spec.Selector),
	}
}
