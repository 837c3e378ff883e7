// Package scheduling holds the registry of the scheduling.k8s.io API group:
// priority classes, and the two system classes the server creates at start.
package scheduling

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

const (
	// SystemPriorityClassPrefix marks names reserved for the system classes.
	SystemPriorityClassPrefix = "system-"
	// HighestUserDefinablePriority is the largest value a user class may
	// have; the system classes sit above it.
	HighestUserDefinablePriority = int32(1000000000)
	// SystemCriticalPriority is the value of system-cluster-critical.
	SystemCriticalPriority = 2 * HighestUserDefinablePriority
)

// Resources returns the descriptors of scheduling.k8s.io/v1.
func Resources() []*registry.Resource {
	return []*registry.Resource{{
		GroupVersion: schedulingv1.SchemeGroupVersion,
		Name:         "priorityclasses",
		Singular:     "priorityclass",
		Kind:         "PriorityClass",
		ShortNames:   []string{"pc"},
		Namespaced:   false,
		New:          func() runtime.Object { return &schedulingv1.PriorityClass{} },
		NewList:      func() runtime.Object { return &schedulingv1.PriorityClassList{} },
		Strategy: registry.Strategy{
			Default:        defaultPriorityClass,
			Validate:       validatePriorityClass,
			ValidateUpdate: validatePriorityClassUpdate,
		},
		Table: priorityClassTable,
	}}
}

// SystemPriorityClasses returns fresh copies of upstream's built-in
// classes, for the server to create at start when they are missing.
func SystemPriorityClasses() []*schedulingv1.PriorityClass {
	policy := corev1.PreemptLowerPriority
	mk := func(name string, value int32, desc string) *schedulingv1.PriorityClass {
		p := policy
		return &schedulingv1.PriorityClass{
			TypeMeta:         metav1.TypeMeta{APIVersion: schedulingv1.SchemeGroupVersion.String(), Kind: "PriorityClass"},
			ObjectMeta:       metav1.ObjectMeta{Name: name},
			Value:            value,
			Description:      desc,
			PreemptionPolicy: &p,
		}
	}
	return []*schedulingv1.PriorityClass{
		mk("system-node-critical", SystemCriticalPriority+1000,
			"Used for system critical pods that must not be moved from their current node."),
		mk("system-cluster-critical", SystemCriticalPriority,
			"Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."),
	}
}

// isKnownSystemClass reports whether name, value and globalDefault are
// exactly one of the system classes, and why not when they are not.
func isKnownSystemClass(name string, value int32, globalDefault bool) (bool, string) {
	for _, s := range SystemPriorityClasses() {
		if s.Name != name {
			continue
		}
		if s.Value != value {
			return false, fmt.Sprintf("value of %v PriorityClass must be %v", name, s.Value)
		}
		if s.GlobalDefault != globalDefault {
			return false, fmt.Sprintf("globalDefault of %v PriorityClass must be %v", name, s.GlobalDefault)
		}
		return true, ""
	}
	return false, fmt.Sprintf("%v is not a known system priority class", name)
}

func defaultPriorityClass(obj runtime.Object) {
	pc, ok := obj.(*schedulingv1.PriorityClass)
	if !ok {
		return
	}
	if pc.PreemptionPolicy == nil {
		p := corev1.PreemptLowerPriority
		pc.PreemptionPolicy = &p
	}
}

// validatePriorityClass checks a new class. At most one globalDefault class
// is upstream's admission plugin's business, not validation's; see the
// server's admission chain.
func validatePriorityClass(obj runtime.Object) field.ErrorList {
	pc, ok := obj.(*schedulingv1.PriorityClass)
	if !ok {
		return nil
	}
	var errs field.ErrorList
	if strings.HasPrefix(pc.Name, SystemPriorityClassPrefix) {
		if ok, why := isKnownSystemClass(pc.Name, pc.Value, pc.GlobalDefault); !ok {
			errs = append(errs, field.Forbidden(field.NewPath("metadata", "name"),
				"priority class names with '"+SystemPriorityClassPrefix+"' prefix are reserved for system use only. error: "+why))
		}
	} else if pc.Value > HighestUserDefinablePriority {
		errs = append(errs, field.Forbidden(field.NewPath("value"),
			fmt.Sprintf("maximum allowed value of a user defined priority is %v", HighestUserDefinablePriority)))
	}
	if pc.PreemptionPolicy != nil {
		switch *pc.PreemptionPolicy {
		case corev1.PreemptLowerPriority, corev1.PreemptNever:
		default:
			errs = append(errs, field.NotSupported(field.NewPath("preemptionPolicy"), *pc.PreemptionPolicy,
				[]string{string(corev1.PreemptLowerPriority), string(corev1.PreemptNever)}))
		}
	}
	return errs
}

// validatePriorityClassUpdate: value and preemptionPolicy never change
// (pods carry the resolved value).
func validatePriorityClassUpdate(obj, old runtime.Object) field.ErrorList {
	pc, ok := obj.(*schedulingv1.PriorityClass)
	opc, ok2 := old.(*schedulingv1.PriorityClass)
	if !ok || !ok2 {
		return nil
	}
	var errs field.ErrorList
	if pc.Value != opc.Value {
		errs = append(errs, field.Forbidden(field.NewPath("value"), "may not be changed in an update."))
	}
	if !equalPolicy(pc.PreemptionPolicy, opc.PreemptionPolicy) {
		errs = append(errs, field.Invalid(field.NewPath("preemptionPolicy"), pc.PreemptionPolicy, "field is immutable"))
	}
	return errs
}

func equalPolicy(a, b *corev1.PreemptionPolicy) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

var priorityClassTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "Value", Type: "integer", Description: schedulingv1.PriorityClass{}.SwaggerDoc()["value"]},
		{Name: "Global-Default", Type: "boolean", Description: schedulingv1.PriorityClass{}.SwaggerDoc()["globalDefault"]},
		registry.AgeColumn,
		{Name: "PreemptionPolicy", Type: "string", Description: schedulingv1.PriorityClass{}.SwaggerDoc()["preemptionPolicy"]},
	},
	Row: func(obj runtime.Object) []interface{} {
		pc, ok := obj.(*schedulingv1.PriorityClass)
		if !ok {
			return nil
		}
		policy := ""
		if pc.PreemptionPolicy != nil {
			policy = string(*pc.PreemptionPolicy)
		}
		return []interface{}{pc.Name, int64(pc.Value), pc.GlobalDefault, registry.Age(pc), policy}
	},
}
