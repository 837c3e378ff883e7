package core

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// LimitRanges returns the descriptor of core/v1 limitranges ("limits").
// Upstream has no printer for them: the table is the default NAME and
// CREATED AT.
func LimitRanges() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Name:         "limitranges",
		Singular:     "limitrange",
		Kind:         "LimitRange",
		ShortNames:   []string{"limits"},
		Namespaced:   true,
		New:          func() runtime.Object { return &corev1.LimitRange{} },
		NewList:      func() runtime.Object { return &corev1.LimitRangeList{} },
		Strategy: registry.Strategy{
			Default:        defaultLimitRange,
			Validate:       validateLimitRange,
			ValidateUpdate: func(obj, _ runtime.Object) field.ErrorList { return validateLimitRange(obj) },
		},
		Table: &registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.NameColumn,
				{Name: "Created At", Type: "date", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
			},
			Row: func(obj runtime.Object) []interface{} {
				lr, ok := obj.(*corev1.LimitRange)
				if !ok {
					return []interface{}{"", ""}
				}
				return []interface{}{lr.Name, lr.CreationTimestamp.UTC().Format("2006-01-02T15:04:05Z")}
			},
		},
	}
}

// defaultLimitRange fills, for Container limits, default from max and
// defaultRequest from default, then from min, as upstream does.
func defaultLimitRange(obj runtime.Object) {
	lr, ok := obj.(*corev1.LimitRange)
	if !ok {
		return
	}
	for i := range lr.Spec.Limits {
		item := &lr.Spec.Limits[i]
		if item.Type != corev1.LimitTypeContainer {
			continue
		}
		if item.Default == nil {
			item.Default = corev1.ResourceList{}
		}
		if item.DefaultRequest == nil {
			item.DefaultRequest = corev1.ResourceList{}
		}
		for k, v := range item.Max {
			if _, ok := item.Default[k]; !ok {
				item.Default[k] = v.DeepCopy()
			}
		}
		for k, v := range item.Default {
			if _, ok := item.DefaultRequest[k]; !ok {
				item.DefaultRequest[k] = v.DeepCopy()
			}
		}
		for k, v := range item.Min {
			if _, ok := item.DefaultRequest[k]; !ok {
				item.DefaultRequest[k] = v.DeepCopy()
			}
		}
	}
}

// validateLimitRange checks each item: a known type used once, resource
// names that fit the type, non-negative quantities, and the ordering
// min <= defaultRequest <= default <= max with ratios of at least 1.
func validateLimitRange(obj runtime.Object) field.ErrorList {
	lr, ok := obj.(*corev1.LimitRange)
	if !ok {
		return metaWrongType(obj, "v1.LimitRange")
	}
	var errs field.ErrorList
	types := []string{string(corev1.LimitTypeContainer), string(corev1.LimitTypePersistentVolumeClaim), string(corev1.LimitTypePod)}
	seen := map[corev1.LimitType]bool{}
	limitsPath := field.NewPath("spec", "limits")
	for i := range lr.Spec.Limits {
		item := &lr.Spec.Limits[i]
		p := limitsPath.Index(i)
		switch item.Type {
		case corev1.LimitTypeContainer, corev1.LimitTypePod, corev1.LimitTypePersistentVolumeClaim:
		case "":
			errs = append(errs, field.Required(p.Child("type"), ""))
		default:
			errs = append(errs, field.NotSupported(p.Child("type"), item.Type, types))
		}
		if seen[item.Type] {
			errs = append(errs, field.Duplicate(p.Child("type"), item.Type))
		}
		seen[item.Type] = true

		check := func(name string, l corev1.ResourceList) {
			for _, k := range metaSortedKeys(l) {
				kp := p.Child(name).Key(string(k))
				errs = append(errs, limitRangeResourceName(item.Type, k, kp)...)
				errs = append(errs, metaNonNegativeQuantity(l[k], kp)...)
			}
		}
		check("max", item.Max)
		check("min", item.Min)
		if item.Type == corev1.LimitTypePod {
			if len(item.Default) > 0 {
				errs = append(errs, field.Forbidden(p.Child("default"), "may not be specified when `type` is 'Pod'"))
			}
			if len(item.DefaultRequest) > 0 {
				errs = append(errs, field.Forbidden(p.Child("defaultRequest"), "may not be specified when `type` is 'Pod'"))
			}
		} else {
			check("default", item.Default)
			check("defaultRequest", item.DefaultRequest)
		}
		check("maxLimitRequestRatio", item.MaxLimitRequestRatio)
		if item.Type == corev1.LimitTypePersistentVolumeClaim {
			_, hasMin := item.Min[corev1.ResourceStorage]
			_, hasMax := item.Max[corev1.ResourceStorage]
			if !hasMin && !hasMax {
				errs = append(errs, field.Required(p.Child("limits"), "either minimum or maximum storage value is required, but neither was provided"))
			}
		}
		errs = append(errs, limitRangeOrdering(item, p)...)
	}
	return errs
}

// limitRangeOrdering checks, per resource, that the values of one item are
// consistent with each other.
func limitRangeOrdering(item *corev1.LimitRangeItem, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	keys := map[corev1.ResourceName]bool{}
	for _, l := range []corev1.ResourceList{item.Max, item.Min, item.Default, item.DefaultRequest, item.MaxLimitRequestRatio} {
		for k := range l {
			keys[k] = true
		}
	}
	for _, k := range metaSortedKeys(keys) {
		min, hasMin := item.Min[k]
		max, hasMax := item.Max[k]
		def, hasDef := item.Default[k]
		req, hasReq := item.DefaultRequest[k]
		ratio, hasRatio := item.MaxLimitRequestRatio[k]
		if item.Type == corev1.LimitTypePod {
			// Pod items may not have defaults (rejected above).
			hasDef, hasReq = false, false
		}
		key := string(k)
		if hasMin && hasMax && min.Cmp(max) > 0 {
			errs = append(errs, field.Invalid(p.Child("min").Key(key), min.String(), fmt.Sprintf("min value %s is greater than max value %s", min.String(), max.String())))
		}
		if hasReq && hasMin && min.Cmp(req) > 0 {
			errs = append(errs, field.Invalid(p.Child("defaultRequest").Key(key), req.String(), fmt.Sprintf("min value %s is greater than default request value %s", min.String(), req.String())))
		}
		if hasReq && hasMax && req.Cmp(max) > 0 {
			errs = append(errs, field.Invalid(p.Child("defaultRequest").Key(key), req.String(), fmt.Sprintf("default request value %s is greater than max value %s", req.String(), max.String())))
		}
		if hasReq && hasDef && req.Cmp(def) > 0 {
			errs = append(errs, field.Invalid(p.Child("defaultRequest").Key(key), req.String(), fmt.Sprintf("default request value %s is greater than default limit value %s", req.String(), def.String())))
		}
		if hasDef && hasMin && min.Cmp(def) > 0 {
			errs = append(errs, field.Invalid(p.Child("default").Key(key), min.String(), fmt.Sprintf("min value %s is greater than default value %s", min.String(), def.String())))
		}
		if hasDef && hasMax && def.Cmp(max) > 0 {
			errs = append(errs, field.Invalid(p.Child("default").Key(key), max.String(), fmt.Sprintf("default value %s is greater than max value %s", def.String(), max.String())))
		}
		if hasRatio && ratio.Cmp(*resource.NewQuantity(1, resource.DecimalSI)) < 0 {
			errs = append(errs, field.Invalid(p.Child("maxLimitRequestRatio").Key(key), ratio.String(), fmt.Sprintf("ratio %s is less than 1", ratio.String())))
		}
		if hasRatio && hasMin && hasMax && min.Sign() > 0 {
			limit := float64(max.MilliValue()) / float64(min.MilliValue())
			if float64(ratio.MilliValue())/1000 > limit {
				errs = append(errs, field.Invalid(p.Child("maxLimitRequestRatio").Key(key), ratio.String(), fmt.Sprintf("ratio %s is greater than max/min = %f", ratio.String(), limit)))
			}
		}
		if hasDef && hasReq && !limitRangeOvercommitAllowed(k) && def.Cmp(req) != 0 {
			errs = append(errs, field.Invalid(p.Child("defaultRequest").Key(key), req.String(), fmt.Sprintf("default value %s must equal to defaultRequest value %s in %s", def.String(), req.String(), key)))
		}
	}
	return errs
}

// limitRangeOvercommitAllowed: hugepages and extended resources cannot be
// overcommitted, so their limit must equal their request.
func limitRangeOvercommitAllowed(k corev1.ResourceName) bool {
	return !metaIsHugePages(k) && !metaIsExtendedResource(k)
}

// limitRangeResourceName checks a resource name against the item type:
// PersistentVolumeClaim items limit storage only; Pod and Container items
// limit container resources (cpu, memory, ephemeral-storage, hugepages,
// extended resources).
func limitRangeResourceName(t corev1.LimitType, k corev1.ResourceName, p *field.Path) field.ErrorList {
	errs := metaResourceNameFormat(k, p)
	if len(errs) > 0 {
		return errs
	}
	switch t {
	case corev1.LimitTypePersistentVolumeClaim:
		if k != corev1.ResourceStorage {
			errs = append(errs, field.NotSupported(p, k, []string{string(corev1.ResourceStorage)}))
		}
	case corev1.LimitTypePod, corev1.LimitTypeContainer:
		if !metaStandardContainerResources[k] && !metaIsHugePages(k) && !metaIsExtendedResource(k) {
			errs = append(errs, field.Invalid(p, string(k), "must be a standard resource type or fully qualified"))
		}
	}
	return errs
}
