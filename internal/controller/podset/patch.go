package podset

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// AdoptPatch is a JSON merge patch (types.MergePatchType) that makes owner
// the controller of pod. It carries the pod's uid, so it fails if the pod
// was replaced by another of the same name.
func AdoptPatch(pod *corev1.Pod, owner metav1.Object, gvk schema.GroupVersionKind) []byte {
	refs := append(slicesClone(pod.OwnerReferences), *metav1.NewControllerRef(owner, gvk))
	return ownerPatch(pod.UID, refs)
}

// ReleasePatch is a JSON merge patch that removes the owner reference to
// uid from pod.
func ReleasePatch(pod *corev1.Pod, uid types.UID) []byte {
	var refs []metav1.OwnerReference
	for _, r := range pod.OwnerReferences {
		if r.UID != uid {
			refs = append(refs, r)
		}
	}
	return ownerPatch(pod.UID, refs)
}

func ownerPatch(uid types.UID, refs []metav1.OwnerReference) []byte {
	if refs == nil {
		refs = []metav1.OwnerReference{}
	}
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"uid": uid, "ownerReferences": refs}})
	return b
}

func slicesClone(refs []metav1.OwnerReference) []metav1.OwnerReference {
	return append([]metav1.OwnerReference(nil), refs...)
}
