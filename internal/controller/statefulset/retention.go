package statefulset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

var podGVK = corev1.SchemeGroupVersion.WithKind("Pod")

// errClaimGoing: a pod's claim is on its way out (being deleted, or owned
// by an earlier pod of the same name and so garbage), and the pod is not
// created until it is gone. Not a failure: the claim's deletion event
// queues the set again.
var errClaimGoing = errors.New("claim is being deleted")

// retention is a set's persistentVolumeClaimRetentionPolicy reduced to
// what the claims' owner references follow. Any value but Delete counts
// as Retain, the API default (upstream logs unknown values and does the
// same).
type retention struct {
	withSet   bool // whenDeleted: Delete
	withScale bool // whenScaled: Delete
}

func retentionOf(set *appsv1.StatefulSet) retention {
	p := set.Spec.PersistentVolumeClaimRetentionPolicy
	if p == nil {
		return retention{}
	}
	return retention{
		withSet:   p.WhenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
		withScale: p.WhenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
	}
}

// refersTo reports whether ref names obj as an object of kind gvk,
// whatever uid it carries.
func refersTo(ref metav1.OwnerReference, obj metav1.Object, gvk schema.GroupVersionKind) bool {
	return ref.APIVersion == gvk.GroupVersion().String() && ref.Kind == gvk.Kind && ref.Name == obj.GetName()
}

// claimOwners decides the owner references of claim, a claim of pod's
// ordinal in set, under the set's retention policy; condemned: pod's
// ordinal is outside [start, start+replicas). The garbage collector then
// does the deleting:
//
//	whenDeleted  whenScaled  pod in range  pod condemned
//	Retain       Retain      -             -
//	Delete       Retain      set           set
//	Retain       Delete      -             pod
//	Delete       Delete      set           pod
//
// Each reference is a controller reference (controller and
// blockOwnerDeletion true), as upstream sets them since
// kubernetes/kubernetes#122499; a non-controller reference to the set or
// pod (upstream's beta) is replaced. References to other owners are kept. As upstream:
//   - a claim that refers to an earlier set or pod of the same name (uid
//     differs) is not touched: it belongs to the garbage collector;
//   - a claim with another controller gets no reference from us, and
//     loses the ones it has (conflict reports it; the policy does not
//     apply to that claim).
//
// update is false when claim already carries what the policy wants
// (same owners by uid, as controllers); refs is then meaningless.
func claimOwners(claim *corev1.PersistentVolumeClaim, set *appsv1.StatefulSet, pod *corev1.Pod, condemned bool) (refs []metav1.OwnerReference, conflict, update bool) {
	r := retentionOf(set)
	var ours, others []metav1.OwnerReference
	other := false
	for _, ref := range claim.OwnerReferences {
		switch {
		case refersTo(ref, set, gvk):
			if ref.UID != set.UID {
				return nil, false, false
			}
			ours = append(ours, ref)
		case refersTo(ref, pod, podGVK):
			if ref.UID != pod.UID {
				return nil, false, false
			}
			ours = append(ours, ref)
		default:
			others = append(others, ref)
			other = other || (ref.Controller != nil && *ref.Controller)
		}
	}
	var want []metav1.OwnerReference
	switch {
	case other:
	case r.withScale && condemned:
		want = append(want, *metav1.NewControllerRef(pod, podGVK))
	case r.withSet:
		want = append(want, *metav1.NewControllerRef(set, gvk))
	}
	if sameOwners(ours, want) {
		return nil, false, false
	}
	return append(others, want...), other && r != (retention{}), true
}

// sameOwners: have and want name the same owners, each as controller.
func sameOwners(have, want []metav1.OwnerReference) bool {
	if len(have) != len(want) {
		return false
	}
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h metav1.OwnerReference) bool {
			return h.UID == w.UID && h.Controller != nil && *h.Controller
		}) {
			return false
		}
	}
	return true
}

// claimGoing reports whether claim cannot back a new pod named podName:
// it is being deleted, or an earlier pod of that name owns it (the pod
// that is to be created does not exist, so the owner is gone and the
// garbage collector will delete the claim). Upstream checks the owner
// only under whenScaled Delete; skiff checks it under any policy, since
// such a claim goes whatever the policy says now.
func claimGoing(claim *corev1.PersistentVolumeClaim, podName string) bool {
	if claim.DeletionTimestamp != nil {
		return true
	}
	return slices.ContainsFunc(claim.OwnerReferences, func(ref metav1.OwnerReference) bool {
		return ref.APIVersion == "v1" && ref.Kind == podGVK.Kind && ref.Name == podName
	})
}

// syncClaimOwners brings the owner references of pod's claims in line
// with the set's retention policy (claimOwners), with an update carrying
// the resourceVersion the cache saw (upstream also updates, not patches).
// A claim the cache does not have yet is left for a later sync.
func (c *Controller) syncClaimOwners(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod, condemned bool) error {
	ordinal, ok := ordinalOf(set.Name, pod.Name)
	if !ok {
		return nil
	}
	for _, t := range set.Spec.VolumeClaimTemplates {
		name := claimName(t.Name, set.Name, ordinal)
		claim, err := c.claims.PersistentVolumeClaims(set.Namespace).Get(name)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("statefulset %s/%s: claim %s: %w", set.Namespace, set.Name, name, err)
		}
		refs, conflict, update := claimOwners(claim, set, pod, condemned)
		if !update {
			continue
		}
		if conflict {
			c.recorder.Eventf(set, corev1.EventTypeWarning, "ConflictingController",
				"PersistentVolumeClaim %s has a conflicting OwnerReference that acts as a managing controller, the retention policy is ignored for this claim", name)
		}
		upd := claim.DeepCopy()
		upd.OwnerReferences = refs
		_, err = c.client.CoreV1().PersistentVolumeClaims(set.Namespace).Update(ctx, upd, metav1.UpdateOptions{})
		switch {
		case err == nil:
			c.log.Debug("claim owners updated", "claim", set.Namespace+"/"+name, "pod", pod.Name, "condemned", condemned)
		case apierrors.IsNotFound(err):
		default:
			return fmt.Errorf("statefulset %s/%s: owner references of claim %s: %w", set.Namespace, set.Name, name, err)
		}
	}
	return nil
}

// claimDeleted queues the sets that claim (possibly a tombstone) is named
// for, <template>-<set>-<ordinal>: a pod of theirs may be waiting for it
// to go (errClaimGoing).
func (c *Controller) claimDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	claim, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return
	}
	sets, err := c.sets.StatefulSets(claim.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, set := range sets {
		for _, t := range set.Spec.VolumeClaimTemplates {
			rest, ok := strings.CutPrefix(claim.Name, t.Name+"-")
			if _, member := ordinalOf(set.Name, rest); ok && member {
				c.queue.Add(set.Namespace + "/" + set.Name)
				break
			}
		}
	}
}
