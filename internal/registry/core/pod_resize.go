package core

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// ResizeSubresource is the pod subresource through which a running pod's
// container resources change in place (`kubectl patch --subresource
// resize`); the kubelet then applies them (internal/kubelet/resize.go).
const ResizeSubresource = "resize"

// podResize is pods/resize, as upstream's: GET returns the pod; PUT and
// PATCH take the whole pod and write only the containers' and init
// containers' resources and resizePolicy, and the pod-level resources
// (everything else, labels and annotations too, is kept as stored),
// bumping the generation when the spec changed. validatePodResize says
// which changes are allowed.
func podResize() registry.Subresource {
	return registry.Subresource{
		Name:             ResizeSubresource,
		PrepareForUpdate: preparePodForResize,
		ValidateUpdate:   validatePodResize,
		OwnedFields: []string{
			"spec.containers.*.resources", "spec.containers.*.resizePolicy",
			"spec.initContainers.*.resources", "spec.initContainers.*.resizePolicy",
			"spec.resources",
		},
	}
}

// preparePodForResize keeps everything of old but the resources (and
// resizePolicy) of containers, init containers and the pod. When
// containers were added, removed, renamed or reordered the new spec is
// kept whole, for validation to refuse it with upstream's messages.
func preparePodForResize(_ context.Context, obj, old runtime.Object) {
	pod, ok := obj.(*corev1.Pod)
	oldPod, ok2 := old.(*corev1.Pod)
	if !ok || !ok2 {
		return
	}
	keepStoredPodMeta(pod, oldPod)
	containers, ok := keepResizeFields(pod.Spec.Containers, oldPod.Spec.Containers)
	inits, ok2 := keepResizeFields(pod.Spec.InitContainers, oldPod.Spec.InitContainers)
	if ok && ok2 {
		podResources := pod.Spec.Resources
		if podResources == nil && oldPod.Spec.Resources != nil {
			// A client that does not know pod-level resources dropped
			// them: keep them (upstream's PodLevelResourcesFixDefaulting).
			podResources = oldPod.Spec.Resources.DeepCopy()
		}
		pod.Spec = *oldPod.Spec.DeepCopy()
		pod.Spec.Containers = containers
		pod.Spec.InitContainers = inits
		pod.Spec.Resources = podResources
	}
	bumpGenerationOnSpecChange(pod, oldPod)
}

// keepResizeFields returns old's containers with the resources and
// resizePolicy of the new ones, or false when the two lists do not name
// the same containers in the same order.
func keepResizeFields(newCs, oldCs []corev1.Container) ([]corev1.Container, bool) {
	if len(newCs) != len(oldCs) {
		return nil, false
	}
	if len(oldCs) == 0 {
		return oldCs, true
	}
	out := make([]corev1.Container, len(oldCs))
	for i := range oldCs {
		if newCs[i].Name != oldCs[i].Name {
			return nil, false
		}
		out[i] = *oldCs[i].DeepCopy()
		out[i].Resources = newCs[i].Resources
		out[i].ResizePolicy = newCs[i].ResizePolicy
	}
	return out, true
}

// validatePodResize is upstream's ValidatePodResize: the pod stays valid;
// static pods and Windows pods cannot be resized; the QoS class may not
// change; containers may be neither added, removed, renamed nor
// reordered; requests and limits may be added and changed but not
// removed, and only those of cpu and memory (of containers, init
// containers and the pod); a non-sidecar init container whose policy is
// RestartContainer may not be resized. A pod whose running containers
// report no resources ran on a node without resize support.
func validatePodResize(obj, old runtime.Object) field.ErrorList {
	pod, ok := obj.(*corev1.Pod)
	oldPod, ok2 := old.(*corev1.Pod)
	if !ok || !ok2 {
		return nil
	}
	errs := validatePod(pod)
	if _, mirror := oldPod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return field.ErrorList{field.Forbidden(field.NewPath(""), "static pods cannot be resized")}
	}
	if oldPod.Spec.OS != nil && oldPod.Spec.OS.Name == corev1.Windows {
		return field.ErrorList{field.Forbidden(field.NewPath(""), "windows pods cannot be resized")}
	}
	specPath := field.NewPath("spec")
	if oldQOS(oldPod) != podQOSClass(&pod.Spec) {
		errs = append(errs, field.Invalid(specPath, pod.Status.QOSClass, "Pod QOS Class may not change as a result of resizing"))
	}
	if !resizeSupported(oldPod) {
		errs = append(errs, field.Forbidden(specPath, "Pod running on node without support for resize"))
	}

	munged := pod.Spec.DeepCopy()
	if hasPodLevelResources(oldPod) || hasPodLevelResources(pod) {
		errs = append(errs, validatePodLevelResize(pod, oldPod, munged, specPath)...)
	}

	if order := validateResizeOrder(pod, oldPod, specPath); len(order) > 0 {
		return append(errs, order...)
	}
	for i := range oldPod.Spec.InitContainers {
		errs = append(errs, validateContainerResize(&pod.Spec.InitContainers[i].Resources, &oldPod.Spec.InitContainers[i].Resources,
			specPath.Child("initContainers").Index(i).Child("resources"))...)
	}
	for i := range oldPod.Spec.Containers {
		errs = append(errs, validateContainerResize(&pod.Spec.Containers[i].Resources, &oldPod.Spec.Containers[i].Resources,
			specPath.Child("containers").Index(i).Child("resources"))...)
	}

	for i := range munged.Containers {
		c := &munged.Containers[i]
		keepOldCPUMemory(c, &oldPod.Spec.Containers[i])
		if !apiequality.Semantic.DeepEqual(*c, oldPod.Spec.Containers[i]) {
			errs = append(errs, field.Forbidden(specPath, "only cpu and memory resources are mutable"))
		}
	}
	for i := range munged.InitContainers {
		c := &munged.InitContainers[i]
		o := &oldPod.Spec.InitContainers[i]
		modified := !apiequality.Semantic.DeepEqual(*c, *o)
		keepOldCPUMemory(c, o)
		if !apiequality.Semantic.DeepEqual(*c, *o) {
			errs = append(errs, field.Forbidden(specPath.Child("initContainers").Index(i), "only cpu and memory resources for init or sidecar containers are mutable"))
		}
		if modified && !isSidecar(c) {
			for _, p := range c.ResizePolicy {
				if p.RestartPolicy == corev1.RestartContainer {
					errs = append(errs, field.Forbidden(specPath.Child("initContainers").Index(i), "non-sidecar init containers with a resize policy of RestartContainer cannot be resized"))
				}
			}
		}
	}
	if !apiequality.Semantic.DeepEqual(pod.Spec.Volumes, oldPod.Spec.Volumes) {
		errs = append(errs, field.Forbidden(specPath.Child("volumes"), "volumes are immutable on resize when InPlacePodVerticalScalingMemoryBackedVolumes feature gate is disabled"))
	}
	if len(errs) > 0 {
		return errs
	}
	if !apiequality.Semantic.DeepEqual(*munged, oldPod.Spec) {
		errs = append(errs, field.Forbidden(specPath, "only cpu and memory resources are mutable"))
	}
	return errs
}

// oldQOS is the stored pod's class: its status, or computed from its
// spec when the status has none.
func oldQOS(pod *corev1.Pod) corev1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	return podQOSClass(&pod.Spec)
}

// resizeSupported is upstream's version-skew check: a pod whose first
// running container reports no resources runs on a kubelet that cannot
// resize. A pod with no running container may be resized.
func resizeSupported(pod *corev1.Pod) bool {
	for _, c := range pod.Status.ContainerStatuses {
		if c.State.Running != nil {
			return c.Resources != nil
		}
	}
	return true
}

func hasPodLevelResources(pod *corev1.Pod) bool {
	r := pod.Spec.Resources
	return r != nil && len(r.Requests)+len(r.Limits) > 0
}

// validatePodLevelResize: pod-level requests and limits may change but
// not be removed, and only for cpu and memory. It masks munged.Resources
// to the old cpu and memory values for the final comparison.
func validatePodLevelResize(pod, oldPod *corev1.Pod, munged *corev1.PodSpec, specPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if oldPod.Spec.Resources != nil && pod.Spec.Resources == nil {
		return append(errs, field.Forbidden(specPath.Child("resources"), "pod-level resources cannot be removed"))
	}
	if oldPod.Spec.Resources != nil {
		if resourcesRemoved(pod.Spec.Resources.Requests, oldPod.Spec.Resources.Requests) {
			errs = append(errs, field.Forbidden(specPath.Child("resources").Child("requests"), "pod-level resource requests cannot be removed"))
		}
		if resourcesRemoved(pod.Spec.Resources.Limits, oldPod.Spec.Resources.Limits) {
			errs = append(errs, field.Forbidden(specPath.Child("resources").Child("limits"), "pod-level resource limits cannot be removed"))
		}
	}
	if munged.Resources != nil {
		var oldReq, oldLim corev1.ResourceList
		if oldPod.Spec.Resources != nil {
			oldReq, oldLim = oldPod.Spec.Resources.Requests, oldPod.Spec.Resources.Limits
		}
		munged.Resources.Requests = withOldCPUMemory(munged.Resources.Requests, oldReq)
		munged.Resources.Limits = withOldCPUMemory(munged.Resources.Limits, oldLim)
		if oldPod.Spec.Resources == nil && len(munged.Resources.Requests) == 0 && len(munged.Resources.Limits) == 0 && len(munged.Resources.Claims) == 0 {
			munged.Resources = nil
		}
	}
	if !apiequality.Semantic.DeepEqual(munged.Resources, oldPod.Spec.Resources) {
		errs = append(errs, field.Forbidden(specPath, "only cpu and memory resources are mutable at pod-level"))
	}
	return errs
}

// validateResizeOrder refuses added, removed, renamed or reordered
// containers and init containers.
func validateResizeOrder(pod, oldPod *corev1.Pod, specPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	check := func(newCs, oldCs []corev1.Container, name string) {
		p := specPath.Child(name)
		if len(newCs) != len(oldCs) {
			errs = append(errs, field.Forbidden(p, name+" may not be added or removed on resize"))
			return
		}
		for i := range oldCs {
			if newCs[i].Name != oldCs[i].Name {
				errs = append(errs, field.Forbidden(p.Index(i).Child("name"), name+" may not be renamed or reordered on resize"))
			}
		}
	}
	check(pod.Spec.Containers, oldPod.Spec.Containers, "containers")
	check(pod.Spec.InitContainers, oldPod.Spec.InitContainers, "initContainers")
	return errs
}

// validateContainerResize: requests and limits may not be removed.
func validateContainerResize(newR, oldR *corev1.ResourceRequirements, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if resourcesRemoved(newR.Requests, oldR.Requests) {
		errs = append(errs, field.Forbidden(fldPath.Child("requests"), "resource requests cannot be removed"))
	}
	if resourcesRemoved(newR.Limits, oldR.Limits) {
		errs = append(errs, field.Forbidden(fldPath.Child("limits"), "resource limits cannot be removed"))
	}
	return errs
}

func resourcesRemoved(rl, old corev1.ResourceList) bool {
	for name := range old {
		if _, ok := rl[name]; !ok {
			return true
		}
	}
	return false
}

// keepOldCPUMemory sets c's cpu and memory requests and limits to old's,
// keeping its other resources, so that what still differs is a change
// resize does not allow.
func keepOldCPUMemory(c, old *corev1.Container) {
	c.Resources = corev1.ResourceRequirements{
		Limits:   withOldCPUMemory(c.Resources.Limits, old.Resources.Limits),
		Requests: withOldCPUMemory(c.Resources.Requests, old.Resources.Requests),
		Claims:   c.Resources.Claims,
	}
}

// withOldCPUMemory is rl with its cpu and memory entries replaced by
// old's (removed where old has none). nil stays nil when old is nil.
func withOldCPUMemory(rl, old corev1.ResourceList) corev1.ResourceList {
	if rl == nil && old == nil {
		return nil
	}
	out := corev1.ResourceList{}
	for name, q := range rl {
		if name != corev1.ResourceCPU && name != corev1.ResourceMemory {
			out[name] = q
		}
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := old[name]; ok {
			out[name] = q
		}
	}
	return out
}
