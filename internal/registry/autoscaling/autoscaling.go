// Package autoscaling holds the registry of the autoscaling API group:
// horizontal pod autoscalers, stored as autoscaling/v2 and served as v2 and
// as v1, which is converted at the edge (convert.go) the way upstream
// converts it, keeping what v1 cannot say in annotations.
package autoscaling

import (
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// storedAs is the resource both versions live in.
var storedAs = schema.GroupVersionResource{Group: "autoscaling", Version: "v2", Resource: "horizontalpodautoscalers"}

// Resources returns the descriptors of autoscaling/v2 and autoscaling/v1.
func Resources() []*registry.Resource {
	v2 := &registry.Resource{
		GroupVersion: autoscalingv2.SchemeGroupVersion,
		Name:         "horizontalpodautoscalers",
		Singular:     "horizontalpodautoscaler",
		Kind:         "HorizontalPodAutoscaler",
		ShortNames:   []string{"hpa"},
		Categories:   []string{"all"},
		Namespaced:   true,
		New:          func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscaler{} },
		NewList:      func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscalerList{} },
		Status:       true,
		Strategy: registry.Strategy{
			Default:              func(obj runtime.Object) { withV2(obj, DefaultV2) },
			Validate:             func(obj runtime.Object) field.ErrorList { return validateObj(obj, validateHPA) },
			ValidateUpdate:       func(obj, _ runtime.Object) field.ErrorList { return validateObj(obj, validateHPA) },
			ValidateStatusUpdate: func(obj, _ runtime.Object) field.ErrorList { return validateObj(obj, validateHPAStatus) },
		},
		Table: hpaTable(func(obj runtime.Object) *autoscalingv2.HorizontalPodAutoscaler {
			h, _ := obj.(*autoscalingv2.HorizontalPodAutoscaler)
			return h
		}),
	}
	v1 := &registry.Resource{
		GroupVersion: autoscalingv1.SchemeGroupVersion,
		Name:         v2.Name,
		Singular:     v2.Singular,
		Kind:         v2.Kind,
		ShortNames:   v2.ShortNames,
		Categories:   v2.Categories,
		Namespaced:   true,
		New:          func() runtime.Object { return &autoscalingv1.HorizontalPodAutoscaler{} },
		NewList:      func() runtime.Object { return &autoscalingv1.HorizontalPodAutoscalerList{} },
		Status:       true,
		Strategy: registry.Strategy{
			Default: defaultV1,
			// v1 objects are checked in their v2 form, as upstream checks
			// every version in its internal form: field paths are v2's.
			Validate:             func(obj runtime.Object) field.ErrorList { return validateObj(obj, validateHPA) },
			ValidateUpdate:       func(obj, _ runtime.Object) field.ErrorList { return validateObj(obj, validateHPA) },
			ValidateStatusUpdate: func(obj, _ runtime.Object) field.ErrorList { return validateObj(obj, validateHPAStatus) },
		},
		Table: hpaTable(func(obj runtime.Object) *autoscalingv2.HorizontalPodAutoscaler {
			h, ok := obj.(*autoscalingv1.HorizontalPodAutoscaler)
			if !ok {
				return nil
			}
			return v1ToV2(h)
		}),
		StoredAs:   &storedAs,
		ToStored:   ToStored,
		FromStored: FromStored,
	}
	return []*registry.Resource{v2, v1}
}

func withV2(obj runtime.Object, f func(*autoscalingv2.HorizontalPodAutoscaler)) {
	if h, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler); ok {
		f(h)
	}
}

// validateObj runs check on obj in its v2 form, whichever version it is.
func validateObj(obj runtime.Object, check func(*autoscalingv2.HorizontalPodAutoscaler) field.ErrorList) field.ErrorList {
	switch h := obj.(type) {
	case *autoscalingv2.HorizontalPodAutoscaler:
		return check(h)
	case *autoscalingv1.HorizontalPodAutoscaler:
		return check(v1ToV2(h))
	}
	return nil
}
