// Package node holds the registry of the node.k8s.io API group: runtime
// classes, which name the container runtime configuration (the CRI
// runtime handler) a pod runs with, the overhead it adds, and the nodes
// that have it. The RuntimeClass admission plugin (internal/admission)
// copies a class's overhead and scheduling into pods; the kubelet passes
// its handler to RunPodSandbox.
package node

import (
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/registry/core"
)

// Resources returns the descriptors of node.k8s.io/v1.
func Resources() []*registry.Resource {
	return []*registry.Resource{{
		GroupVersion: nodev1.SchemeGroupVersion,
		Name:         "runtimeclasses",
		Singular:     "runtimeclass",
		Kind:         "RuntimeClass",
		Namespaced:   false,
		New:          func() runtime.Object { return &nodev1.RuntimeClass{} },
		NewList:      func() runtime.Object { return &nodev1.RuntimeClassList{} },
		Strategy: registry.Strategy{
			Validate:       validateRuntimeClass,
			ValidateUpdate: validateRuntimeClassUpdate,
		},
		Table: runtimeClassTable,
	}}
}

// validateRuntimeClass: the handler is a DNS label (the runtime's name
// for a configuration, "runc"), the overhead valid resource amounts, the
// scheduling valid labels and tolerations, none of them twice.
func validateRuntimeClass(obj runtime.Object) field.ErrorList {
	rc, ok := obj.(*nodev1.RuntimeClass)
	if !ok {
		return nil
	}
	var errs field.ErrorList
	if rc.Handler == "" {
		errs = append(errs, field.Required(field.NewPath("handler"), ""))
	} else {
		for _, msg := range registry.NameIsDNSLabel(rc.Handler, false) {
			errs = append(errs, field.Invalid(field.NewPath("handler"), rc.Handler, msg))
		}
	}
	if rc.Overhead != nil {
		errs = append(errs, core.ValidateOverhead(rc.Overhead.PodFixed, field.NewPath("overhead"))...)
	}
	if s := rc.Scheduling; s != nil {
		p := field.NewPath("scheduling")
		errs = append(errs, metav1validation.ValidateLabels(s.NodeSelector, p.Child("nodeSelector"))...)
		errs = append(errs, core.ValidateTolerations(s.Tolerations, p.Child("tolerations"))...)
		seen := map[corev1.Toleration]bool{}
		for i, t := range s.Tolerations {
			key := corev1.Toleration{Key: t.Key, Operator: t.Operator, Value: t.Value, Effect: t.Effect}
			if seen[key] {
				errs = append(errs, field.Duplicate(p.Child("tolerations").Index(i), t))
			}
			seen[key] = true
		}
	}
	return errs
}

// validateRuntimeClassUpdate: the handler never changes (running pods
// use it); overhead and scheduling may, and apply to new pods only.
func validateRuntimeClassUpdate(obj, old runtime.Object) field.ErrorList {
	rc, ok := obj.(*nodev1.RuntimeClass)
	orc, ok2 := old.(*nodev1.RuntimeClass)
	if !ok || !ok2 {
		return nil
	}
	errs := apivalidation.ValidateImmutableField(rc.Handler, orc.Handler, field.NewPath("handler"))
	return append(errs, validateRuntimeClass(obj)...)
}

var runtimeClassTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "Handler", Type: "string", Description: nodev1.RuntimeClass{}.SwaggerDoc()["handler"]},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		rc, ok := obj.(*nodev1.RuntimeClass)
		if !ok {
			return nil
		}
		return []interface{}{rc.Name, rc.Handler, registry.Age(rc)}
	},
}
