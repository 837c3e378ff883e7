package core

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// updatablePodSpecFields is the list upstream's pod update error names.
var updatablePodSpecFields = []string{
	"`spec.containers[*].image`",
	"`spec.initContainers[*].image`",
	"`spec.activeDeadlineSeconds`",
	"`spec.tolerations` (only additions to existing tolerations)",
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
}

// validatePodObjectUpdate is upstream's pod update rule: the new pod must
// be valid, and its spec may differ from the old one only in container
// and init container images, activeDeadlineSeconds (set or lowered),
// added tolerations (existing ones may change only tolerationSeconds),
// removed scheduling gates, terminationGracePeriodSeconds from negative to
// 1, and — while scheduling gates hold the pod — additions to nodeSelector
// and node affinity.
func validatePodObjectUpdate(obj, old runtime.Object) field.ErrorList {
	pod, ok := obj.(*corev1.Pod)
	oldPod, ok2 := old.(*corev1.Pod)
	if !ok || !ok2 {
		return nil
	}
	errs := validatePod(pod)
	specPath := field.NewPath("spec")
	newSpec, oldSpec := &pod.Spec, &oldPod.Spec

	e, stop := validateContainerUpdates(newSpec.Containers, oldSpec.Containers, specPath.Child("containers"))
	errs = append(errs, e...)
	if stop {
		return errs
	}
	e, stop = validateContainerUpdates(newSpec.InitContainers, oldSpec.InitContainers, specPath.Child("initContainers"))
	errs = append(errs, e...)
	if stop {
		return errs
	}

	adsPath := specPath.Child("activeDeadlineSeconds")
	if newSpec.ActiveDeadlineSeconds != nil {
		v := *newSpec.ActiveDeadlineSeconds
		if v < 0 || v > math.MaxInt32 {
			return append(errs, field.Invalid(adsPath, v, validation.InclusiveRangeError(0, math.MaxInt32)))
		}
		if oldSpec.ActiveDeadlineSeconds != nil && *oldSpec.ActiveDeadlineSeconds < v {
			return append(errs, field.Invalid(adsPath, v, "must be less than or equal to previous value"))
		}
	} else if oldSpec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Invalid(adsPath, newSpec.ActiveDeadlineSeconds, "must not update from a positive integer to nil value"))
	}

	errs = append(errs, validateOnlyAddedTolerations(newSpec.Tolerations, oldSpec.Tolerations, specPath.Child("tolerations"))...)
	errs = append(errs, validateOnlyDeletedSchedulingGates(newSpec.SchedulingGates, oldSpec.SchedulingGates, specPath.Child("schedulingGates"))...)

	if apiequality.Semantic.DeepEqual(newSpec, oldSpec) {
		return errs
	}

	// Copy the updatable fields from old into a copy of new; whatever
	// still differs is a forbidden change.
	munged := newSpec.DeepCopy()
	for i := range munged.Containers {
		munged.Containers[i].Image = oldSpec.Containers[i].Image
	}
	for i := range munged.InitContainers {
		munged.InitContainers[i].Image = oldSpec.InitContainers[i].Image
	}
	munged.ActiveDeadlineSeconds = oldSpec.ActiveDeadlineSeconds
	munged.SchedulingGates = oldSpec.SchedulingGates
	munged.Tolerations = oldSpec.Tolerations
	if oldSpec.TerminationGracePeriodSeconds != nil && *oldSpec.TerminationGracePeriodSeconds < 0 &&
		munged.TerminationGracePeriodSeconds != nil && *munged.TerminationGracePeriodSeconds == 1 {
		munged.TerminationGracePeriodSeconds = oldSpec.TerminationGracePeriodSeconds
	}
	if len(oldSpec.SchedulingGates) > 0 {
		errs = append(errs, mungeGatedPodScheduling(munged, oldSpec, specPath)...)
	}
	if !apiequality.Semantic.DeepEqual(munged, oldSpec) {
		diff := cmp.Diff(*oldSpec, *munged)
		errs = append(errs, field.Forbidden(specPath, fmt.Sprintf("pod updates may not change fields other than %s\n%v",
			strings.Join(updatablePodSpecFields, ","), diff)))
	}
	return errs
}

// validateContainerUpdates: the same number of containers, each with an
// image. stop tells the caller to skip the remaining checks.
func validateContainerUpdates(newCs, oldCs []corev1.Container, fldPath *field.Path) (field.ErrorList, bool) {
	if len(newCs) != len(oldCs) {
		return field.ErrorList{field.Forbidden(fldPath, "pod updates may not add or remove containers")}, true
	}
	var errs field.ErrorList
	for i, c := range newCs {
		if c.Image == "" {
			errs = append(errs, field.Required(fldPath.Index(i).Child("image"), ""))
		}
	}
	return errs, false
}

// validateOnlyAddedTolerations: every old toleration is still there, up to
// its tolerationSeconds.
func validateOnlyAddedTolerations(newTs, oldTs []corev1.Toleration, fldPath *field.Path) field.ErrorList {
	for _, old := range oldTs {
		found := false
		for _, nt := range newTs {
			o := old
			o.TolerationSeconds = nt.TolerationSeconds
			if reflect.DeepEqual(o, nt) {
				found = true
				break
			}
		}
		if !found {
			return field.ErrorList{field.Forbidden(fldPath, "existing toleration can not be modified except its tolerationSeconds")}
		}
	}
	return validateTolerations(newTs, fldPath)
}

func validateOnlyDeletedSchedulingGates(newGates, oldGates []corev1.PodSchedulingGate, fldPath *field.Path) field.ErrorList {
	old := map[string]bool{}
	for _, g := range oldGates {
		old[g.Name] = true
	}
	var errs field.ErrorList
	for i, g := range newGates {
		if !old[g.Name] {
			errs = append(errs, field.Forbidden(fldPath.Index(i).Child("name"),
				fmt.Sprintf("only deletion is allowed, but found new scheduling gate '%s'", g.Name)))
		}
	}
	return errs
}

// mungeGatedPodScheduling allows a gated pod's nodeSelector to gain
// entries and its required node affinity to be narrowed (here: any change
// while gated, checked for additions to nodeSelector only), then copies
// the old values into munged.
func mungeGatedPodScheduling(munged, old *corev1.PodSpec, specPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if !apiequality.Semantic.DeepEqual(munged.NodeSelector, old.NodeSelector) {
		for k, v := range old.NodeSelector {
			if nv, ok := munged.NodeSelector[k]; !ok || nv != v {
				errs = append(errs, field.Invalid(specPath.Child("nodeSelector"), munged.NodeSelector, "only additions to spec.nodeSelector are allowed (no mutations or deletions)"))
				break
			}
		}
		munged.NodeSelector = old.NodeSelector
	}
	var oldNA *corev1.NodeAffinity
	if old.Affinity != nil {
		oldNA = old.Affinity.NodeAffinity
	}
	var newNA *corev1.NodeAffinity
	if munged.Affinity != nil {
		newNA = munged.Affinity.NodeAffinity
	}
	if !apiequality.Semantic.DeepEqual(oldNA, newNA) {
		switch {
		case munged.Affinity == nil:
			munged.Affinity = &corev1.Affinity{NodeAffinity: oldNA}
		case old.Affinity == nil && munged.Affinity.PodAffinity == nil && munged.Affinity.PodAntiAffinity == nil:
			munged.Affinity = nil
		default:
			a := *munged.Affinity
			a.NodeAffinity = oldNA
			munged.Affinity = &a
		}
	}
	return errs
}

// validatePodObjectStatusUpdate checks a status write: QoS class
// immutable, observed generations not negative, a valid nominated node
// name, custom condition types qualified names, terminated containers
// not coming back under a restart policy that forbids it, valid pod and
// host IPs.
func validatePodObjectStatusUpdate(obj, old runtime.Object) field.ErrorList {
	pod, ok := obj.(*corev1.Pod)
	oldPod, ok2 := old.(*corev1.Pod)
	if !ok || !ok2 {
		return nil
	}
	var errs field.ErrorList
	st := field.NewPath("status")
	if g := pod.Status.ObservedGeneration; g < 0 {
		errs = append(errs, field.Invalid(st.Child("observedGeneration"), g, "must be a non-negative integer"))
	}
	for i, c := range pod.Status.Conditions {
		if c.ObservedGeneration < 0 {
			errs = append(errs, field.Invalid(st.Child("conditions").Index(i).Child("observedGeneration"), c.ObservedGeneration, "must be a non-negative integer"))
		}
		switch c.Type {
		case corev1.PodScheduled, corev1.PodReady, corev1.PodInitialized, corev1.ContainersReady:
		default:
			errs = append(errs, qualifiedNameErrs(string(c.Type), st.Child("conditions").Index(i).Child("type"))...)
		}
	}
	if n := pod.Status.NominatedNodeName; n != oldPod.Status.NominatedNodeName && n != "" {
		for _, msg := range apivalidation.NameIsDNSSubdomain(n, false) {
			errs = append(errs, field.Invalid(st.Child("nominatedNodeName"), n, msg))
		}
	}
	errs = append(errs, apivalidation.ValidateImmutableField(pod.Status.QOSClass, oldPod.Status.QOSClass, st.Child("qosClass"))...)
	errs = append(errs, validateStateTransitions(pod.Status.ContainerStatuses, oldPod.Status.ContainerStatuses, oldPod.Spec.RestartPolicy, nil, st.Child("containerStatuses"))...)
	errs = append(errs, validateStateTransitions(pod.Status.InitContainerStatuses, oldPod.Status.InitContainerStatuses, oldPod.Spec.RestartPolicy, oldPod.Spec.InitContainers, st.Child("initContainerStatuses"))...)
	errs = append(errs, validateStateTransitions(pod.Status.EphemeralContainerStatuses, oldPod.Status.EphemeralContainerStatuses, corev1.RestartPolicyNever, nil, st.Child("ephemeralContainerStatuses"))...)
	errs = append(errs, validateIPList(podIPStrings(pod.Status.PodIPs), st.Child("podIPs"))...)
	errs = append(errs, validateIPList(hostIPStrings(pod.Status.HostIPs), st.Child("hostIPs"))...)
	return errs
}

// validateStateTransitions forbids a terminated container from leaving
// the terminated state unless the restart policy (or, for init
// containers, being a sidecar) allows a restart.
func validateStateTransitions(newSt, oldSt []corev1.ContainerStatus, policy corev1.RestartPolicy, inits []corev1.Container, fldPath *field.Path) field.ErrorList {
	if policy == corev1.RestartPolicyAlways {
		return nil
	}
	var errs field.ErrorList
	for i, o := range oldSt {
		if o.State.Terminated == nil {
			continue
		}
		if o.State.Terminated.ExitCode != 0 && policy == corev1.RestartPolicyOnFailure {
			continue
		}
		sidecar := false
		for _, c := range inits {
			if c.Name == o.Name {
				sidecar = c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
				break
			}
		}
		if sidecar {
			continue
		}
		for _, n := range newSt {
			if n.Name == o.Name && n.State.Terminated == nil {
				errs = append(errs, field.Forbidden(fldPath.Index(i).Child("state"), "may not be transitioned to non-terminated state"))
			}
		}
	}
	return errs
}

func validateIPList(ips []string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, ip := range ips {
		errs = append(errs, validation.IsValidIP(fldPath.Index(i), ip)...)
		if seen[ip] {
			errs = append(errs, field.Duplicate(fldPath.Index(i), ip))
		}
		seen[ip] = true
	}
	if len(ips) > 2 || (len(ips) == 2 && isIPv4(ips[0]) == isIPv4(ips[1])) {
		errs = append(errs, field.Invalid(fldPath, ips, "may specify no more than one IP for each IP family"))
	}
	return errs
}

func isIPv4(s string) bool { return !strings.Contains(s, ":") }

func podIPStrings(ips []corev1.PodIP) []string {
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, ip.IP)
	}
	return out
}

func hostIPStrings(ips []corev1.HostIP) []string {
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, ip.IP)
	}
	return out
}
