package core

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateContainerResources checks resource requirements (a container's,
// pod-level, or overhead as limits): standard or extended resource names,
// non-negative quantities, whole numbers for extended resources, requests
// not above limits (and equal to them for resources that cannot be
// overcommitted), hugepages only with cpu or memory, claims naming pod
// resource claims (podClaims nil means none may be named).
func validateContainerResources(r *corev1.ResourceRequirements, podClaims sets.Set[string], fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	limPath, reqPath := fldPath.Child("limits"), fldPath.Child("requests")
	cpuOrMem, hugePages := false, false
	for name, q := range r.Limits {
		p := limPath.Key(string(name))
		errs = append(errs, validateContainerResourceName(name, p)...)
		errs = append(errs, validateResourceQuantity(name, q, p)...)
		hugePages = hugePages || isHugePageResource(name)
		cpuOrMem = cpuOrMem || name == corev1.ResourceCPU || name == corev1.ResourceMemory
	}
	for name, q := range r.Requests {
		p := reqPath.Key(string(name))
		errs = append(errs, validateContainerResourceName(name, p)...)
		errs = append(errs, validateResourceQuantity(name, q, p)...)
		if lim, ok := r.Limits[name]; ok {
			if q.Cmp(lim) != 0 && !overcommitAllowed(name) {
				errs = append(errs, field.Invalid(reqPath, q.String(), fmt.Sprintf("must be equal to %s limit of %s", name, lim.String())))
			} else if q.Cmp(lim) > 0 {
				errs = append(errs, field.Invalid(reqPath, q.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String())))
			}
		} else if !overcommitAllowed(name) {
			errs = append(errs, field.Required(limPath, "Limit must be set for non overcommitable resources"))
		}
		hugePages = hugePages || isHugePageResource(name)
		cpuOrMem = cpuOrMem || name == corev1.ResourceCPU || name == corev1.ResourceMemory
	}
	if hugePages && !cpuOrMem {
		errs = append(errs, field.Forbidden(fldPath, "HugePages require cpu or memory"))
	}
	names := sets.New[string]()
	for i, c := range r.Claims {
		p := fldPath.Child("claims").Index(i)
		if c.Name == "" {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		if names.Has(c.Name) {
			errs = append(errs, field.Duplicate(p, c.Name))
		}
		names.Insert(c.Name)
		if !podClaims.Has(c.Name) {
			e := field.NotFound(p, c.Name)
			if podClaims.Len() > 0 {
				e.Detail = fmt.Sprintf("must be one of the names in pod.spec.resourceClaims: %s", strings.Join(sets.List(podClaims), ", "))
			} else {
				e.Detail = "no claims defined in pod.spec.resourceClaims"
			}
			errs = append(errs, e)
		}
	}
	return errs
}

// validateContainerResourceName: an unprefixed name must be a standard
// container resource (cpu, memory, ephemeral-storage, hugepages-<size>); a
// prefixed one outside kubernetes.io must be a valid extended resource.
func validateContainerResourceName(name corev1.ResourceName, p *field.Path) field.ErrorList {
	errs := qualifiedNameErrs(string(name), p)
	if len(errs) > 0 {
		return errs
	}
	if !strings.Contains(string(name), "/") {
		if !isStandardContainerResource(name) {
			errs = append(errs, field.Invalid(p, name, "must be a standard resource for containers"))
		}
	} else if !isNativeResource(name) && !isExtendedResource(name) {
		errs = append(errs, field.Invalid(p, name, "doesn't follow extended resource name standard"))
	}
	return errs
}

// validateResourceQuantity: non-negative, and whole for extended
// resources (GPUs and the like cannot be split).
func validateResourceQuantity(name corev1.ResourceName, q resource.Quantity, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if q.Sign() < 0 {
		errs = append(errs, field.Invalid(p, q.String(), "must be greater than or equal to 0"))
	}
	if isExtendedResource(name) && q.MilliValue()%1000 != 0 {
		errs = append(errs, field.Invalid(p, q, "must be an integer"))
	}
	return errs
}

func isStandardContainerResource(name corev1.ResourceName) bool {
	switch name {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return true
	}
	return isHugePageResource(name)
}

func isHugePageResource(name corev1.ResourceName) bool {
	return strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix)
}

// isNativeResource: unprefixed or in the kubernetes.io domain.
func isNativeResource(name corev1.ResourceName) bool {
	return !strings.Contains(string(name), "/") || strings.Contains(string(name), "kubernetes.io/")
}

// isExtendedResource: a device-plugin style resource ("nvidia.com/gpu").
func isExtendedResource(name corev1.ResourceName) bool {
	if isNativeResource(name) || strings.HasPrefix(string(name), corev1.DefaultResourceRequestsPrefix) {
		return false
	}
	return len(content.IsQualifiedName(corev1.DefaultResourceRequestsPrefix+string(name))) == 0
}

// overcommitAllowed: native resources other than hugepages may have
// requests below limits.
func overcommitAllowed(name corev1.ResourceName) bool {
	return isNativeResource(name) && !isHugePageResource(name)
}

// ValidateOverhead checks a pod overhead as spec.overhead is checked (as
// limits): the node.k8s.io RuntimeClass's overhead.podFixed becomes it.
func ValidateOverhead(overhead corev1.ResourceList, fldPath *field.Path) field.ErrorList {
	return validateContainerResources(&corev1.ResourceRequirements{Limits: overhead}, nil, fldPath)
}
