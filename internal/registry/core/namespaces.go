package core

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// namespaceNameLabel is the label every namespace carries with its own
// name, so that namespace selectors can pick namespaces by name.
const namespaceNameLabel = corev1.LabelMetadataName

// standardFinalizers are the unqualified finalizer names upstream accepts.
var standardFinalizers = map[string]bool{
	string(corev1.FinalizerKubernetes): true,
	metav1.FinalizerOrphanDependents:   true,
	metav1.FinalizerDeleteDependents:   true,
}

// Namespaces describes core/v1 namespaces: cluster-scoped, named by a
// DNS-1123 label, with a status subresource. New namespaces are Active and
// carry the "kubernetes" spec finalizer; the finalize subresource and the
// deletion of their contents are the server's and the namespace
// controller's.
func Namespaces() *registry.Resource {
	return &registry.Resource{
		GroupVersion:        corev1.SchemeGroupVersion,
		Name:                "namespaces",
		Singular:            "namespace",
		Kind:                "Namespace",
		ShortNames:          []string{"ns"},
		Namespaced:          false,
		New:                 func() runtime.Object { return &corev1.Namespace{} },
		NewList:             func() runtime.Object { return &corev1.NamespaceList{} },
		Status:              true,
		ReturnDeletedObject: true,
		Strategy: registry.Strategy{
			BeginDeletion: func(obj runtime.Object) {
				if ns, ok := obj.(*corev1.Namespace); ok {
					ns.Status.Phase = corev1.NamespaceTerminating
				}
			},
			// The namespace controller empties the namespace, then removes
			// its spec.finalizers through /finalize.
			DeletionHeld: func(obj runtime.Object) bool {
				ns, ok := obj.(*corev1.Namespace)
				return ok && len(ns.Spec.Finalizers) > 0
			},
			PrepareForCreate:       prepareNamespaceForCreate,
			PrepareForUpdate:       prepareNamespaceForUpdate,
			PrepareForStatusUpdate: prepareNamespaceForStatusUpdate,
			Default:                defaultNamespaceObject,
			Validate:               validateNamespaceObject,
			ValidateStatusUpdate:   validateNamespaceObjectStatusUpdate,
			NameValidation:         registry.NameIsDNSLabel,
		},
		Table: &registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				{Name: "Status", Type: "string", Description: "The status of the namespace"},
				registry.AgeColumn,
			},
			Row: namespaceRow,
		},
		Fields: namespaceFields,
	}
}

// prepareNamespaceForCreate makes the namespace Active and adds the
// "kubernetes" finalizer to its spec. Namespaces have no generation.
func prepareNamespaceForCreate(_ context.Context, obj runtime.Object) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return
	}
	ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
	for _, f := range ns.Spec.Finalizers {
		if f == corev1.FinalizerKubernetes {
			return
		}
	}
	ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
}

// prepareNamespaceForUpdate keeps spec.finalizers (only the finalize
// subresource changes them) and status.
func prepareNamespaceForUpdate(_ context.Context, obj, old runtime.Object) {
	ns, ok := obj.(*corev1.Namespace)
	o, ok2 := old.(*corev1.Namespace)
	if !ok || !ok2 {
		return
	}
	ns.Spec.Finalizers = o.Spec.Finalizers
	ns.Status = o.Status
}

// prepareNamespaceForStatusUpdate keeps spec and, since the server does
// not default status writes, the name label.
func prepareNamespaceForStatusUpdate(ctx context.Context, obj, old runtime.Object) {
	registry.DefaultPrepareForStatusUpdate(ctx, obj, old)
	defaultNamespaceObject(obj)
}

// defaultNamespaceObject sets the kubernetes.io/metadata.name label to the
// namespace's name (on every write, so it cannot be removed or changed)
// and an empty phase to Active.
func defaultNamespaceObject(obj runtime.Object) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return
	}
	if ns.Name != "" {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[namespaceNameLabel] = ns.Name
	}
	if ns.Status.Phase == "" {
		ns.Status.Phase = corev1.NamespaceActive
	}
}

// validateNamespaceObject checks the spec finalizers: qualified names, and
// unqualified ones must be standard.
func validateNamespaceObject(obj runtime.Object) field.ErrorList {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return nil
	}
	var errs field.ErrorList
	p := field.NewPath("spec", "finalizers")
	for i, f := range ns.Spec.Finalizers {
		errs = append(errs, validateFinalizerName(string(f), p.Index(i))...)
	}
	return errs
}

func validateFinalizerName(name string, p *field.Path) field.ErrorList {
	errs := apivalidation.ValidateFinalizerName(name, p)
	if len(errs) == 0 && !strings.Contains(name, "/") && !standardFinalizers[name] {
		errs = append(errs, field.Invalid(p, name, "name is neither a standard finalizer name nor is it fully qualified"))
	}
	return errs
}

// validateNamespaceObjectStatusUpdate: Active while not being deleted,
// Terminating once deleted.
func validateNamespaceObjectStatusUpdate(obj, _ runtime.Object) field.ErrorList {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return nil
	}
	p := field.NewPath("status", "Phase")
	if ns.DeletionTimestamp.IsZero() {
		if ns.Status.Phase != corev1.NamespaceActive {
			return field.ErrorList{field.Invalid(p, ns.Status.Phase, "may only be 'Active' if `deletionTimestamp` is empty")}
		}
	} else if ns.Status.Phase != corev1.NamespaceTerminating {
		return field.ErrorList{field.Invalid(p, ns.Status.Phase, "may only be 'Terminating' if `deletionTimestamp` is not empty")}
	}
	return nil
}

func namespaceRow(obj runtime.Object) []interface{} {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return nil
	}
	return []interface{}{ns.Name, string(ns.Status.Phase), registry.Age(ns)}
}

// namespaceFields is upstream's set, including its legacy "name" key.
func namespaceFields(obj runtime.Object) fields.Set {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return fields.Set{}
	}
	return fields.Set{
		"metadata.name": ns.Name,
		"name":          ns.Name,
		"status.phase":  string(ns.Status.Phase),
	}
}
