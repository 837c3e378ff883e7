package resource

import (
	"context"
	"time"

	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// deviceTaintRules: a taint put on the devices a selector picks (all
// devices when it is empty). skiff stores the rule and its status; no
// scheduler honours the taint and no controller evicts for NoExecute.
func deviceTaintRules() *registry.Resource {
	return &registry.Resource{
		GroupVersion: resourcev1.SchemeGroupVersion,
		Name:         "devicetaintrules",
		Singular:     "devicetaintrule",
		Kind:         "DeviceTaintRule",
		Namespaced:   false,
		New:          func() runtime.Object { return &resourcev1.DeviceTaintRule{} },
		NewList:      func() runtime.Object { return &resourcev1.DeviceTaintRuleList{} },
		Strategy: registry.Strategy{
			PrepareForUpdate: prepareTaintRuleUpdate,
			Default: func(obj runtime.Object) {
				if r, ok := obj.(*resourcev1.DeviceTaintRule); ok {
					defaultTaint(&r.Spec.Taint)
				}
			},
			Validate: func(obj runtime.Object) field.ErrorList {
				r, ok := obj.(*resourcev1.DeviceTaintRule)
				if !ok {
					return nil
				}
				return taintRuleSpec(&r.Spec, nil, field.NewPath("spec"))
			},
			ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
				r, ok := obj.(*resourcev1.DeviceTaintRule)
				or, ok2 := old.(*resourcev1.DeviceTaintRule)
				if !ok || !ok2 {
					return nil
				}
				return taintRuleSpec(&r.Spec, &or.Spec, field.NewPath("spec"))
			},
			ValidateStatusUpdate: func(obj, _ runtime.Object) field.ErrorList {
				r, ok := obj.(*resourcev1.DeviceTaintRule)
				if !ok {
					return nil
				}
				p := field.NewPath("status", "conditions")
				errs := metav1validation.ValidateConditions(r.Status.Conditions, p)
				if len(r.Status.Conditions) > resourcev1.DeviceTaintRuleStatusMaxConditions {
					errs = append(errs, field.TooMany(p, len(r.Status.Conditions), resourcev1.DeviceTaintRuleStatusMaxConditions))
				}
				return errs
			},
		},
		Status: true,
	}
}

// prepareTaintRuleUpdate keeps status and bumps the generation on a spec
// change, as the default does, and, as upstream, moves taint.timeAdded to
// now when the effect changes and the client left timeAdded alone: it
// says when this effect began, which is what tolerationSeconds count
// from.
func prepareTaintRuleUpdate(ctx context.Context, obj, old runtime.Object) {
	registry.DefaultPrepareForUpdate(ctx, obj, old)
	r, ok := obj.(*resourcev1.DeviceTaintRule)
	or, ok2 := old.(*resourcev1.DeviceTaintRule)
	if !ok || !ok2 {
		return
	}
	if r.Spec.Taint.Effect != or.Spec.Taint.Effect && r.Spec.Taint.TimeAdded.Equal(or.Spec.Taint.TimeAdded) {
		// The effect changed, so the default has bumped the generation.
		r.Spec.Taint.TimeAdded = &metav1.Time{Time: time.Now().Truncate(time.Second)}
	}
}

func taintRuleSpec(s, old *resourcev1.DeviceTaintRuleSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if sel := s.DeviceSelector; sel != nil {
		sp := p.Child("deviceSelector")
		if sel.Driver != nil {
			errs = append(errs, driverName(*sel.Driver, sp.Child("driver"))...)
		}
		if sel.Pool != nil {
			errs = append(errs, poolName(*sel.Pool, sp.Child("pool"))...)
		}
		if sel.Device != nil {
			errs = append(errs, deviceName(*sel.Device, sp.Child("device"))...)
		}
	}
	var oldTaint *resourcev1.DeviceTaint
	if old != nil {
		oldTaint = &old.Taint
	}
	return append(errs, deviceTaint(s.Taint, oldTaint, p.Child("taint"))...)
}
