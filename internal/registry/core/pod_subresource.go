package core

import (
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
