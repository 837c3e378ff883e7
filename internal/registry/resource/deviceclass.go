package resource

import (
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// deviceClasses: cluster-scoped classes of devices (a CEL selector and
// configuration) that claims request by name.
func deviceClasses() *registry.Resource {
	return &registry.Resource{
		GroupVersion: resourcev1.SchemeGroupVersion,
		Name:         "deviceclasses",
		Singular:     "deviceclass",
		Kind:         "DeviceClass",
		Namespaced:   false,
		New:          func() runtime.Object { return &resourcev1.DeviceClass{} },
		NewList:      func() runtime.Object { return &resourcev1.DeviceClassList{} },
		Strategy: registry.Strategy{
			Validate: func(obj runtime.Object) field.ErrorList {
				c, ok := obj.(*resourcev1.DeviceClass)
				if !ok {
					return nil
				}
				return deviceClassSpec(&c.Spec, field.NewPath("spec"))
			},
			ValidateUpdate: func(obj, _ runtime.Object) field.ErrorList {
				c, ok := obj.(*resourcev1.DeviceClass)
				if !ok {
					return nil
				}
				return deviceClassSpec(&c.Spec, field.NewPath("spec"))
			},
		},
	}
}

func deviceClassSpec(s *resourcev1.DeviceClassSpec, p *field.Path) field.ErrorList {
	errs := selectors(s.Selectors, p.Child("selectors"))
	cp := p.Child("config")
	if len(s.Config) > resourcev1.DeviceConfigMaxSize {
		errs = append(errs, field.TooMany(cp, len(s.Config), resourcev1.DeviceConfigMaxSize))
	} else {
		for i, c := range s.Config {
			errs = append(errs, deviceConfiguration(c.DeviceConfiguration, cp.Index(i))...)
		}
	}
	if n := s.ExtendedResourceName; n != nil && !isExtendedResourceName(corev1.ResourceName(*n)) {
		errs = append(errs, field.Invalid(p.Child("extendedResourceName"), *n, "must be a valid extended resource name"))
	}
	return errs
}
