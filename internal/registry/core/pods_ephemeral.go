package core

import (
	"context"
	"fmt"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// EphemeralContainersSubresource is the pod subresource through which
// debug containers are added to a running pod (`kubectl debug`).
const EphemeralContainersSubresource = "ephemeralcontainers"

// podEphemeralContainers is pods/ephemeralcontainers, as upstream's: GET
// returns the pod; PUT and PATCH take the whole pod and write only
// spec.ephemeralContainers (everything else, labels and annotations too,
// is kept as stored), bumping the generation when they changed. Existing
// ephemeral containers can be neither removed nor changed; new ones get
// the pod's validation (validateEphemeralContainers). The main resource's
// update validation, for its part, refuses any change to them.
func podEphemeralContainers() registry.Subresource {
	return registry.Subresource{
		Name:             EphemeralContainersSubresource,
		PrepareForUpdate: preparePodForEphemeralContainersUpdate,
		ValidateUpdate:   validatePodEphemeralContainersUpdate,
		OwnedFields:      []string{"spec.ephemeralContainers"},
	}
}

// preparePodForEphemeralContainersUpdate keeps everything of old but
// spec.ephemeralContainers and the identity the server carried over.
func preparePodForEphemeralContainersUpdate(_ context.Context, obj, old runtime.Object) {
	pod, ok := obj.(*corev1.Pod)
	oldPod, ok2 := old.(*corev1.Pod)
	if !ok || !ok2 {
		return
	}
	ecs := pod.Spec.EphemeralContainers
	pod.Spec = *oldPod.Spec.DeepCopy()
	pod.Spec.EphemeralContainers = ecs
	keepStoredPodMeta(pod, oldPod)
	bumpGenerationOnSpecChange(pod, oldPod)
}

// validatePodEphemeralContainersUpdate is upstream's
// ValidatePodEphemeralContainersUpdate: the pod (ephemeral containers
// included) is valid, it is not a static pod's mirror, and every
// ephemeral container old had is still there, unchanged. Ephemeral
// containers are matched by name: a strategic merge patch does not keep
// their order.
func validatePodEphemeralContainersUpdate(obj, old runtime.Object) field.ErrorList {
	pod, ok := obj.(*corev1.Pod)
	oldPod, ok2 := old.(*corev1.Pod)
	if !ok || !ok2 {
		return nil
	}
	errs := validatePod(pod)
	if _, mirror := oldPod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return field.ErrorList{field.Forbidden(field.NewPath(""), "static pods do not support ephemeral containers")}
	}
	specPath := field.NewPath("spec", "ephemeralContainers")
	byName := make(map[string]*corev1.EphemeralContainer, len(pod.Spec.EphemeralContainers))
	for i := range pod.Spec.EphemeralContainers {
		byName[pod.Spec.EphemeralContainers[i].Name] = &pod.Spec.EphemeralContainers[i]
	}
	for _, o := range oldPod.Spec.EphemeralContainers {
		n, ok := byName[o.Name]
		switch {
		case !ok:
			errs = append(errs, field.Forbidden(specPath, fmt.Sprintf("existing ephemeral containers %q may not be removed\n", o.Name)))
		case !apiequality.Semantic.DeepEqual(o, *n):
			errs = append(errs, field.Forbidden(specPath, fmt.Sprintf("existing ephemeral containers %q may not be changed\n%v", o.Name, cmp.Diff(o, *n))))
		}
	}
	return errs
}
