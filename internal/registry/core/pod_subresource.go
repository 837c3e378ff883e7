package core

import (
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
)

// What the pod subresources that write part of the spec
// (pods/ephemeralcontainers, pods/resize) share: they take the whole pod
// and keep everything of the stored one but the spec fields they own.

// keepStoredPodMeta gives pod, written through such a subresource, old's
// status, labels, annotations, finalizers, owners and generation.
func keepStoredPodMeta(pod, old *corev1.Pod) {
	pod.Status = *old.Status.DeepCopy()
	pod.Labels = old.Labels
	pod.Annotations = old.Annotations
	pod.Finalizers = old.Finalizers
	pod.OwnerReferences = old.OwnerReferences
	pod.Generation = old.Generation
}

// bumpGenerationOnSpecChange advances pod's generation when its spec
// differs from old's.
func bumpGenerationOnSpecChange(pod, old *corev1.Pod) {
	if !apiequality.Semantic.DeepEqual(pod.Spec, old.Spec) {
		pod.Generation++
	}
}

// podSpecResetFields are the fields a write through such a subresource
// does not come to own: status, the kept metadata, and every spec field
// but those named (by their JSON names).
func podSpecResetFields(owned ...string) []string {
	out := []string{"status", "metadata.labels", "metadata.annotations", "metadata.finalizers", "metadata.ownerReferences"}
	t := reflect.TypeOf(corev1.PodSpec{})
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" || slices.Contains(owned, name) {
			continue
		}
		out = append(out, "spec."+name)
	}
	return out
}
