// Package podset is what the workload controllers (replicaset, statefulset,
// daemonset, job) share about the pods they own: building a pod from a
// template, claiming and releasing pods by selector and controller
// reference, telling which pods are active, ready and available, and
// ranking pods for deletion as upstream does.
package podset

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// FromTemplate returns a new pod for owner built from template: labels,
// annotations, finalizers and spec copied, a controller reference to owner
// (kind gvk), in owner's namespace. name is used as metadata.name when not
// empty, else generateName is set to generateName.
func FromTemplate(template *corev1.PodTemplateSpec, owner metav1.Object, gvk schema.GroupVersionKind, name, generateName string) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace:       owner.GetNamespace(),
		Name:            name,
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(owner, gvk)},
	}}
	if name == "" {
		pod.GenerateName = generateName
	}
	if template == nil {
		return pod
	}
	t := template.DeepCopy()
	pod.Labels = t.Labels
	pod.Annotations = t.Annotations
	pod.Finalizers = t.Finalizers
	pod.Spec = t.Spec
	return pod
}

// IsActive reports whether a pod still counts towards its owner's replicas:
// not Succeeded, not Failed, not being deleted.
func IsActive(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil
}

// IsTerminal reports whether a pod has finished (Succeeded or Failed).
func IsTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// ReadyCondition returns the pod's Ready condition, or nil.
func ReadyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// IsReady reports whether the pod's Ready condition is True.
func IsReady(p *corev1.Pod) bool {
	c := ReadyCondition(p)
	return c != nil && c.Status == corev1.ConditionTrue
}

// IsAvailable reports whether the pod has been Ready for at least
// minReadySeconds at now.
func IsAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	c := ReadyCondition(p)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false
	}
	if minReadySeconds <= 0 {
		return true
	}
	return !c.LastTransitionTime.IsZero() && c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).Before(now)
}

// UntilAvailable returns how long until a Ready pod becomes available (0 if
// it already is or is not Ready): controllers requeue after it.
func UntilAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) time.Duration {
	c := ReadyCondition(p)
	if c == nil || c.Status != corev1.ConditionTrue || minReadySeconds <= 0 || c.LastTransitionTime.IsZero() {
		return 0
	}
	d := c.LastTransitionTime.Add(time.Duration(minReadySeconds) * time.Second).Sub(now)
	return max(d, 0)
}
