package core

import (
	"context"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/registry"
)

// Pods describes core/v1 pods: namespaced, with a status subresource,
// upstream's defaulting, validation and pod update rules, `kubectl get
// pods` columns and pod field selectors, and the ephemeralcontainers
// (pods_ephemeral.go) and resize (pod_resize.go) subresources. The
// binding, eviction, log, exec, attach and portforward subresources are
// the API server's.
func Pods() *registry.Resource {
	return &registry.Resource{
		GroupVersion:        corev1.SchemeGroupVersion,
		Name:                "pods",
		Singular:            "pod",
		Kind:                "Pod",
		ShortNames:          []string{"po"},
		Categories:          []string{"all"},
		Namespaced:          true,
		New:                 func() runtime.Object { return &corev1.Pod{} },
		NewList:             func() runtime.Object { return &corev1.PodList{} },
		Status:              true,
		ReturnDeletedObject: true,
		Strategy: registry.Strategy{
			GracePeriod:            podGracePeriod,
			PrepareForCreate:       preparePodForCreate,
			PrepareForUpdate:       preparePodForUpdate,
			PrepareForStatusUpdate: preparePodForStatusUpdate,
			Default:                defaultPodObject,
			Validate:               validatePodObject,
			ValidateUpdate:         validatePodObjectUpdate,
			ValidateStatusUpdate:   validatePodObjectStatusUpdate,
		},
		Subresources: []registry.Subresource{podEphemeralContainers(), podResize()},
		Table:        podTable(),
		Fields:       podFields,
	}
}

// preparePodForCreate resets status to what a new pod has — phase Pending,
// its QoS class, and the PodScheduled=False condition when scheduling
// gates hold it — and sets generation 1.
func preparePodForCreate(_ context.Context, obj runtime.Object) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	pod.Status = corev1.PodStatus{
		Phase:    corev1.PodPending,
		QOSClass: podQOSClass(&pod.Spec),
	}
	if len(pod.Spec.SchedulingGates) > 0 {
		pod.Status.Conditions = []corev1.PodCondition{{
			Type:    corev1.PodScheduled,
			Status:  corev1.ConditionFalse,
			Reason:  corev1.PodReasonSchedulingGated,
			Message: "Scheduling is blocked due to non-empty scheduling gates",
		}}
	}
	pod.Generation = 1
}

// preparePodForUpdate keeps status and bumps generation when the spec
// changed. The new spec is defaulted first so that a client leaving out
// defaulted fields does not count as a change (upstream defaults while
// decoding, before this step).
func preparePodForUpdate(_ context.Context, obj, old runtime.Object) {
	pod, ok := obj.(*corev1.Pod)
	oldPod, ok2 := old.(*corev1.Pod)
	if !ok || !ok2 {
		return
	}
	defaultPod(pod)
	pod.Status = oldPod.Status
	pod.Generation = oldPod.Generation
	if !apiequality.Semantic.DeepEqual(pod.Spec, oldPod.Spec) {
		pod.Generation++
	}
}

// preparePodForStatusUpdate keeps everything but status (and labels and
// annotations), keeps the QoS class and observed generations when the
// writer left them out, and keeps podIP/podIPs and hostIP/hostIPs
// consistent as upstream's v1 conversion does.
func preparePodForStatusUpdate(ctx context.Context, obj, old runtime.Object) {
	pod, ok := obj.(*corev1.Pod)
	oldPod, ok2 := old.(*corev1.Pod)
	if !ok || !ok2 {
		return
	}
	registry.DefaultPrepareForStatusUpdate(ctx, obj, old)
	if pod.Status.QOSClass == "" {
		pod.Status.QOSClass = oldPod.Status.QOSClass
	}
	keepObservedGenerations(&pod.Status, &oldPod.Status)
	syncPodIPs(&pod.Status)
}

// keepObservedGenerations carries over status.observedGeneration, and
// each condition's, from old where the writer left them 0, as upstream:
// a writer that does not know the fields (an older client, a controller
// writing its own condition) does not erase what the kubelet observed.
// Conditions are matched by type, in order, since validation allows a
// type more than once.
func keepObservedGenerations(st, old *corev1.PodStatus) {
	if st.ObservedGeneration == 0 {
		st.ObservedGeneration = old.ObservedGeneration
	}
	oldGens := map[corev1.PodConditionType][]int64{}
	for _, c := range old.Conditions {
		oldGens[c.Type] = append(oldGens[c.Type], c.ObservedGeneration)
	}
	for i := range st.Conditions {
		c := &st.Conditions[i]
		gens := oldGens[c.Type]
		if len(gens) == 0 {
			continue
		}
		oldGens[c.Type] = gens[1:]
		if c.ObservedGeneration == 0 {
			c.ObservedGeneration = gens[0]
		}
	}
}

// syncPodIPs makes podIP the first of podIPs (podIP wins when both are set
// and differ, for older writers), and the same for hostIP.
func syncPodIPs(s *corev1.PodStatus) {
	switch {
	case s.PodIP != "" && (len(s.PodIPs) == 0 || s.PodIPs[0].IP != s.PodIP):
		s.PodIPs = []corev1.PodIP{{IP: s.PodIP}}
	case s.PodIP == "" && len(s.PodIPs) > 0:
		s.PodIP = s.PodIPs[0].IP
	}
	switch {
	case s.HostIP != "" && (len(s.HostIPs) == 0 || s.HostIPs[0].IP != s.HostIP):
		s.HostIPs = []corev1.HostIP{{IP: s.HostIP}}
	case s.HostIP == "" && len(s.HostIPs) > 0:
		s.HostIP = s.HostIPs[0].IP
	}
}

func defaultPodObject(obj runtime.Object) {
	if pod, ok := obj.(*corev1.Pod); ok {
		defaultPod(pod)
	}
}

// defaultPod applies DefaultPodSpec and the defaults upstream gives pods
// but not templates: requests copied from limits where missing,
// enableServiceLinks true, and host ports equal to container ports under
// hostNetwork.
func defaultPod(pod *corev1.Pod) {
	DefaultPodSpec(&pod.Spec)
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range cs {
			r := &cs[i].Resources
			if r.Limits == nil {
				continue
			}
			if r.Requests == nil {
				r.Requests = corev1.ResourceList{}
			}
			for name, q := range r.Limits {
				if _, ok := r.Requests[name]; !ok {
					r.Requests[name] = q.DeepCopy()
				}
			}
		}
	}
	if pod.Spec.EnableServiceLinks == nil {
		pod.Spec.EnableServiceLinks = ptr.To(corev1.DefaultEnableServiceLinks)
	}
	if pod.Spec.HostNetwork {
		for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
			for i := range cs {
				for j := range cs[i].Ports {
					if cs[i].Ports[j].HostPort == 0 {
						cs[i].Ports[j].HostPort = cs[i].Ports[j].ContainerPort
					}
				}
			}
		}
	}
}

// Admission defaults, as upstream's admission plugins set them.
const (
	// defaultTolerationSeconds is DefaultTolerationSeconds' default for
	// the not-ready and unreachable NoExecute taints.
	defaultTolerationSeconds int64 = 300
	// systemClusterCritical and systemNodeCritical are the built-in
	// priority classes' values.
	systemClusterCriticalPriority int32 = 2000000000
	systemNodeCriticalPriority    int32 = 2000001000
)

// AddDefaultTolerations adds DefaultTolerationSeconds' tolerations of the
// node.kubernetes.io/not-ready and unreachable NoExecute taints for 300
// seconds, unless spec already tolerates them. Upstream's plugin runs on
// pod updates too, so an update that replaces the tolerations keeps them
// (validation allows only additions).
func AddDefaultTolerations(spec *corev1.PodSpec) {
	notReady, unreachable := false, false
	for _, t := range spec.Tolerations {
		noExecute := t.Effect == corev1.TaintEffectNoExecute || t.Effect == ""
		if noExecute && (t.Key == corev1.TaintNodeNotReady || t.Key == "") {
			notReady = true
		}
		if noExecute && (t.Key == corev1.TaintNodeUnreachable || t.Key == "") {
			unreachable = true
		}
	}
	if !notReady {
		spec.Tolerations = append(spec.Tolerations, corev1.Toleration{
			Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To(defaultTolerationSeconds),
		})
	}
	if !unreachable {
		spec.Tolerations = append(spec.Tolerations, corev1.Toleration{
			Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To(defaultTolerationSeconds),
		})
	}
}

// AdmitPod applies the mutations upstream's default admission chain makes
// to every new pod, which users see on every pod but not in templates:
//
//   - ServiceAccount: serviceAccountName "default" when empty.
//   - DefaultTolerationSeconds: tolerations of the node.kubernetes.io/
//     not-ready and unreachable NoExecute taints for 300 seconds, unless the
//     pod already tolerates them.
//   - Priority: spec.priority from the priority class (0 without one; the
//     built-in system-cluster-critical and system-node-critical classes) and
//     preemptionPolicy PreemptLowerPriority.
//
// The server calls it on create, after Default and before Validate. It
// does not look up PriorityClass or ServiceAccount objects: a pod naming a
// user-defined priority class keeps spec.priority unset for the server to
// fill in, and the service account token volume is not added here.
func AdmitPod(pod *corev1.Pod) {
	if pod == nil {
		return
	}
	spec := &pod.Spec
	if spec.ServiceAccountName == "" {
		spec.ServiceAccountName = "default"
	}
	spec.DeprecatedServiceAccount = spec.ServiceAccountName

	AddDefaultTolerations(spec)

	if spec.Priority == nil {
		switch spec.PriorityClassName {
		case "":
			spec.Priority = ptr.To(int32(0))
		case "system-cluster-critical":
			spec.Priority = ptr.To(systemClusterCriticalPriority)
		case "system-node-critical":
			spec.Priority = ptr.To(systemNodeCriticalPriority)
		}
	}
	if spec.PreemptionPolicy == nil {
		spec.PreemptionPolicy = ptr.To(corev1.PreemptLowerPriority)
	}
}

// validatePodObject is upstream's create validation of a pod.
func validatePodObject(obj runtime.Object) field.ErrorList {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	errs := validatePod(pod)
	spec := field.NewPath("spec")
	if len(pod.Spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(spec.Child("ephemeralContainers"), "cannot be set on create"))
	}
	if pod.Spec.NodeName != "" && len(pod.Spec.SchedulingGates) != 0 {
		errs = append(errs, field.Forbidden(spec.Child("nodeName"), "cannot be set until all schedulingGates have been cleared"))
	}
	return errs
}

// validatePod checks a pod's spec and the rules upstream applies to pods
// but not to templates.
func validatePod(pod *corev1.Pod) field.ErrorList {
	spec := field.NewPath("spec")
	errs := ValidatePodSpec(&pod.Spec, &pod.ObjectMeta, spec)
	if v, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror && pod.Spec.NodeName == "" {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "annotations").Key(corev1.MirrorPodAnnotationKey), v,
			"must set spec.nodeName if mirror pod annotation is set"))
	}
	if pod.Spec.ServiceAccountName == "" {
		for i, v := range pod.Spec.Volumes {
			if v.Projected == nil {
				continue
			}
			for j, s := range v.Projected.Sources {
				if s.ServiceAccountToken != nil {
					errs = append(errs, field.Forbidden(spec.Child("volumes").Index(i).Child("projected", "sources").Index(j).Child("serviceAccountToken"),
						"must not be specified when serviceAccountName is not set"))
				}
			}
		}
	}
	for i, c := range pod.Spec.Containers {
		errs = append(errs, validateImageWhitespace(c.Image, spec.Child("containers").Index(i).Child("image"))...)
	}
	for i, c := range pod.Spec.InitContainers {
		errs = append(errs, validateImageWhitespace(c.Image, spec.Child("initContainers").Index(i).Child("image"))...)
	}
	for i, v := range pod.Spec.Volumes {
		if v.Image != nil && v.Image.Reference == "" {
			errs = append(errs, field.Required(spec.Child("volumes").Index(i).Child("image", "reference"), ""))
		}
	}
	return errs
}

// podFields is upstream's pod field-selector set.
func podFields(obj runtime.Object) fields.Set {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return fields.Set{}
	}
	podIP := ""
	if len(pod.Status.PodIPs) > 0 {
		podIP = pod.Status.PodIPs[0].IP
	} else {
		podIP = pod.Status.PodIP
	}
	hostNetwork := pod.Spec.HostNetwork
	return fields.Set{
		"metadata.name":            pod.Name,
		"metadata.namespace":       pod.Namespace,
		"spec.nodeName":            pod.Spec.NodeName,
		"spec.restartPolicy":       string(pod.Spec.RestartPolicy),
		"spec.schedulerName":       pod.Spec.SchedulerName,
		"spec.serviceAccountName":  pod.Spec.ServiceAccountName,
		"spec.hostNetwork":         strconv.FormatBool(hostNetwork),
		"status.phase":             string(pod.Status.Phase),
		"status.podIP":             podIP,
		"status.nominatedNodeName": pod.Status.NominatedNodeName,
		// Upstream accepts status.podIPs as a selector key but its field
		// set has no value for it, so it only ever matches "". Kept so.
		"status.podIPs": "",
	}
}

// podGracePeriod is how long a pod's deletion waits: only a pod bound to a
// node that has not finished waits, for the kubelet to stop it (and then
// delete it with grace 0). A pod with no node goes at once. The client's
// gracePeriodSeconds overrides the pod's own; a negative one becomes the
// shortest, 1, as upstream.
func podGracePeriod(obj runtime.Object, requested *int64) int64 {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if requested != nil {
		grace = *requested
	}
	if grace < 0 {
		grace = 1
	}
	return grace
}
