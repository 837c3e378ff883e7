// Package policy holds the registry of the policy API group: pod disruption
// budgets, which the eviction subresource of pods consults.
package policy

import (
	"strconv"
	"strings"

	policyv1 "k8s.io/api/policy/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// Resources returns the descriptors of policy/v1.
func Resources() []*registry.Resource {
	return []*registry.Resource{{
		GroupVersion: policyv1.SchemeGroupVersion,
		Name:         "poddisruptionbudgets",
		Singular:     "poddisruptionbudget",
		Kind:         "PodDisruptionBudget",
		ShortNames:   []string{"pdb"},
		Namespaced:   true,
		New:          func() runtime.Object { return &policyv1.PodDisruptionBudget{} },
		NewList:      func() runtime.Object { return &policyv1.PodDisruptionBudgetList{} },
		Status:       true,
		Strategy: registry.Strategy{
			Validate:             validatePDB,
			ValidateUpdate:       func(obj, _ runtime.Object) field.ErrorList { return validatePDB(obj) },
			ValidateStatusUpdate: validatePDBStatusUpdate,
		},
		Table: pdbTable,
	}}
}

// validatePDB checks the spec; upstream lets the whole spec change on update.
func validatePDB(obj runtime.Object) field.ErrorList {
	pdb, ok := obj.(*policyv1.PodDisruptionBudget)
	if !ok {
		return nil
	}
	spec, p := &pdb.Spec, field.NewPath("spec")
	var errs field.ErrorList
	if spec.MinAvailable != nil && spec.MaxUnavailable != nil {
		errs = append(errs, field.Invalid(p, "", "minAvailable and maxUnavailable cannot be both set"))
	}
	if spec.MinAvailable != nil {
		errs = append(errs, validateIntOrPercent(*spec.MinAvailable, p.Child("minAvailable"))...)
	}
	if spec.MaxUnavailable != nil {
		errs = append(errs, validateIntOrPercent(*spec.MaxUnavailable, p.Child("maxUnavailable"))...)
	}
	errs = append(errs, metav1validation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, p.Child("selector"))...)
	if spec.UnhealthyPodEvictionPolicy != nil {
		switch *spec.UnhealthyPodEvictionPolicy {
		case policyv1.IfHealthyBudget, policyv1.AlwaysAllow:
		default:
			errs = append(errs, field.NotSupported(p.Child("unhealthyPodEvictionPolicy"), *spec.UnhealthyPodEvictionPolicy,
				[]string{string(policyv1.AlwaysAllow), string(policyv1.IfHealthyBudget)}))
		}
	}
	return errs
}

// validateIntOrPercent: a non-negative integer or a percentage of at most
// 100%.
func validateIntOrPercent(v intstr.IntOrString, p *field.Path) field.ErrorList {
	switch v.Type {
	case intstr.String:
		if len(validation.IsValidPercent(v.StrVal)) != 0 {
			return field.ErrorList{field.Invalid(p, v.StrVal, "must be an integer or percentage (e.g '5%')")}
		}
		n, err := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%"))
		if err != nil || n > 100 {
			return field.ErrorList{field.Invalid(p, v.StrVal, "must not be greater than 100%")}
		}
	case intstr.Int:
		return apivalidation.ValidateNonnegativeField(int64(v.IntVal), p)
	}
	return nil
}

func validatePDBStatusUpdate(obj, _ runtime.Object) field.ErrorList {
	pdb, ok := obj.(*policyv1.PodDisruptionBudget)
	if !ok {
		return nil
	}
	st, p := &pdb.Status, field.NewPath("status")
	errs := metav1validation.ValidateConditions(st.Conditions, p.Child("conditions"))
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(st.DisruptionsAllowed), p.Child("disruptionsAllowed"))...)
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(st.CurrentHealthy), p.Child("currentHealthy"))...)
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(st.DesiredHealthy), p.Child("desiredHealthy"))...)
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(st.ExpectedPods), p.Child("expectedPods"))...)
	return errs
}

var pdbTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "Min Available", Type: "string", Description: "The minimum number of pods that must be available."},
		{Name: "Max Unavailable", Type: "string", Description: "The maximum number of pods that may be unavailable."},
		{Name: "Allowed Disruptions", Type: "integer", Description: "Calculated number of pods that may be disrupted at this time."},
		registry.AgeColumn,
	},
	Row: func(obj runtime.Object) []interface{} {
		pdb, ok := obj.(*policyv1.PodDisruptionBudget)
		if !ok {
			return nil
		}
		show := func(v *intstr.IntOrString) string {
			if v == nil {
				return "N/A"
			}
			return v.String()
		}
		return []interface{}{pdb.Name, show(pdb.Spec.MinAvailable), show(pdb.Spec.MaxUnavailable),
			int64(pdb.Status.DisruptionsAllowed), registry.Age(pdb)}
	},
}
