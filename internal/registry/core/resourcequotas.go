package core

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

var (
	quotaScopes = []string{
		string(corev1.ResourceQuotaScopeBestEffort), string(corev1.ResourceQuotaScopeCrossNamespacePodAffinity),
		string(corev1.ResourceQuotaScopeNotBestEffort), string(corev1.ResourceQuotaScopeNotTerminating),
		string(corev1.ResourceQuotaScopePriorityClass), string(corev1.ResourceQuotaScopeTerminating),
		string(corev1.ResourceQuotaScopeVolumeAttributesClass),
	}
	quotaScopeOperators = []string{
		string(corev1.ScopeSelectorOpDoesNotExist), string(corev1.ScopeSelectorOpExists),
		string(corev1.ScopeSelectorOpIn), string(corev1.ScopeSelectorOpNotIn),
	}
)

// ResourceQuotas returns the descriptor of core/v1 resourcequotas
// ("quota"). status.hard and status.used are the quota controller's,
// written through the status subresource.
func ResourceQuotas() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Name:         "resourcequotas",
		Singular:     "resourcequota",
		Kind:         "ResourceQuota",
		ShortNames:   []string{"quota"},
		Namespaced:   true,
		New:          func() runtime.Object { return &corev1.ResourceQuota{} },
		NewList:      func() runtime.Object { return &corev1.ResourceQuotaList{} },
		Status:       true,
		Strategy: registry.Strategy{
			Validate:             validateResourceQuota,
			ValidateUpdate:       validateResourceQuotaUpdate,
			ValidateStatusUpdate: validateResourceQuotaStatus,
		},
		Table: &registry.Table{
			// Upstream moved AGE to the end (NAME REQUEST LIMIT AGE);
			// older releases printed NAME AGE REQUEST LIMIT.
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				{Name: "Request", Type: "string", Description: "Request represents a minimum amount of cpu/memory that a container may consume."},
				{Name: "Limit", Type: "string", Description: "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."},
				registry.AgeColumn,
			},
			Row: resourceQuotaRow,
		},
	}
}

// resourceQuotaRow lists "name: used/hard" per resource in status.hard,
// limits.* under LIMIT and the rest under REQUEST.
func resourceQuotaRow(obj runtime.Object) []interface{} {
	q, ok := obj.(*corev1.ResourceQuota)
	if !ok {
		return []interface{}{"", "", "", ""}
	}
	var req, lim []string
	for _, k := range metaSortedKeys(q.Status.Hard) {
		used, hard := q.Status.Used[k], q.Status.Hard[k]
		cell := fmt.Sprintf("%s: %s/%s", k, used.String(), hard.String())
		if prefix, _, found := strings.Cut(string(k), "."); found && prefix == "limits" {
			lim = append(lim, cell)
		} else {
			req = append(req, cell)
		}
	}
	return []interface{}{q.Name, strings.Join(req, ", "), strings.Join(lim, ", "), registry.Age(q)}
}

// validateResourceQuota checks spec.hard (quota resource names,
// non-negative quantities, whole numbers for counts), the scopes and the
// scope selector.
func validateResourceQuota(obj runtime.Object) field.ErrorList {
	q, ok := obj.(*corev1.ResourceQuota)
	if !ok {
		return metaWrongType(obj, "v1.ResourceQuota")
	}
	specPath := field.NewPath("spec")
	errs := quotaResourceList(q.Spec.Hard, specPath.Child("hard"))

	seen := map[corev1.ResourceQuotaScope]bool{}
	for i, s := range q.Spec.Scopes {
		if !slices.Contains(quotaScopes, string(s)) {
			errs = append(errs, field.NotSupported(specPath.Child("scopes").Index(i), s, quotaScopes))
		}
		seen[s] = true
	}
	if sel := q.Spec.ScopeSelector; sel != nil {
		for i, req := range sel.MatchExpressions {
			p := specPath.Child("scopeSelector", "matchExpressions").Index(i)
			if !slices.Contains(quotaScopes, string(req.ScopeName)) {
				errs = append(errs, field.NotSupported(p.Child("scopeName"), req.ScopeName, quotaScopes))
			}
			switch req.Operator {
			case corev1.ScopeSelectorOpIn, corev1.ScopeSelectorOpNotIn:
				if len(req.Values) == 0 {
					errs = append(errs, field.Required(p.Child("values"), "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"))
				}
			case corev1.ScopeSelectorOpExists, corev1.ScopeSelectorOpDoesNotExist:
				if len(req.Values) != 0 {
					errs = append(errs, field.Invalid(p.Child("values"), req.Values, "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector"))
				}
			default:
				errs = append(errs, field.NotSupported(p.Child("operator"), req.Operator, quotaScopeOperators))
			}
			seen[req.ScopeName] = true
		}
	}
	conflicts := [][2]corev1.ResourceQuotaScope{
		{corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating},
		{corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort},
	}
	for _, c := range conflicts {
		if seen[c[0]] && seen[c[1]] {
			errs = append(errs, field.Invalid(specPath.Child("scopes"), q.Spec.Scopes, fmt.Sprintf("conflicting scopes: %s, %s", c[0], c[1])))
		}
	}
	return errs
}

// validateResourceQuotaUpdate adds that scopes may not change.
func validateResourceQuotaUpdate(obj, old runtime.Object) field.ErrorList {
	q, ok1 := obj.(*corev1.ResourceQuota)
	oldQ, ok2 := old.(*corev1.ResourceQuota)
	if !ok1 || !ok2 {
		return metaWrongType(obj, "v1.ResourceQuota")
	}
	var errs field.ErrorList
	if !slices.Equal(q.Spec.Scopes, oldQ.Spec.Scopes) {
		errs = append(errs, apimachineryvalidation.ValidateImmutableField(q.Spec.Scopes, oldQ.Spec.Scopes, field.NewPath("spec", "scopes"))...)
	}
	return append(errs, validateResourceQuota(obj)...)
}

// validateResourceQuotaStatus checks status.hard and status.used.
func validateResourceQuotaStatus(obj, _ runtime.Object) field.ErrorList {
	q, ok := obj.(*corev1.ResourceQuota)
	if !ok {
		return metaWrongType(obj, "v1.ResourceQuota")
	}
	errs := quotaResourceList(q.Status.Hard, field.NewPath("status", "hard"))
	return append(errs, quotaResourceList(q.Status.Used, field.NewPath("status", "used"))...)
}

// quotaResourceList checks the names and quantities of a quota list.
func quotaResourceList(l corev1.ResourceList, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, k := range metaSortedKeys(l) {
		kp := p.Key(string(k))
		if nameErrs := metaResourceNameFormat(k, kp); len(nameErrs) > 0 {
			errs = append(errs, nameErrs...)
		} else if !strings.Contains(string(k), "/") && !metaStandardQuotaResources[k] && !metaIsHugePages(k) {
			errs = append(errs, field.Invalid(kp, string(k), "must be a standard resource for quota"))
		}
		errs = append(errs, metaQuotaQuantity(k, l[k], kp)...)
	}
	return errs
}
