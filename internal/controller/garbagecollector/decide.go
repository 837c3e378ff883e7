package garbagecollector

import (
	"encoding/json"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ownerState is what the collector found at the other end of one owner
// reference.
type ownerState int

const (
	// ownerSolid: the owner exists and is not deleting its dependents.
	ownerSolid ownerState = iota
	// ownerDangling: no object with the reference's name and uid exists
	// (or the reference is invalid: a namespaced owner of a
	// cluster-scoped object).
	ownerDangling
	// ownerWaiting: the owner is being deleted in the foreground and
	// waits for its dependents to go.
	ownerWaiting
	// ownerOrphaning: the owner is being deleted with the orphan
	// finalizer: its dependents are to be kept. The reference is dropped
	// and never counts towards deleting the object, whoever drops it
	// first (the owner's orphaning or the dependent's own check).
	ownerOrphaning
)

type actionKind int

const (
	actNone actionKind = iota
	// actDropRefs: patch the object to remove the owner references in
	// action.drop; the object stays.
	actDropRefs
	// actDelete: delete the object with action.policy.
	actDelete
)

// action is what the collector does to one dependent.
type action struct {
	kind   actionKind
	drop   []types.UID
	policy metav1.DeletionPropagation
}

// decide is the collector's verdict on an object with owner references
// refs, whose owners were found in the states given (a reference missing
// from states counts as solid: never delete on doubt). hasBlocking says
// whether the object itself has dependents with blockOwnerDeletion set.
//
//   - some owner solid or orphaning: the object stays; references to
//     owners that are dangling, waiting in the foreground (so that they
//     do not block that owner) or orphaning are dropped;
//   - no owner solid or orphaning, some waiting: the object is deleted,
//     in the foreground when it has blocking dependents of its own (so
//     the waiting owner waits for the whole subtree), else in the
//     background;
//   - every owner dangling: the object is deleted in the background.
func decide(refs []metav1.OwnerReference, states map[types.UID]ownerState, hasBlocking bool) action {
	if len(refs) == 0 {
		return action{kind: actNone}
	}
	var keep, waiting int
	var drop []types.UID
	for _, r := range refs {
		switch st, ok := states[r.UID]; {
		case !ok || st == ownerSolid:
			keep++
		case st == ownerOrphaning:
			keep++
			drop = append(drop, r.UID)
		case st == ownerWaiting:
			waiting++
			drop = append(drop, r.UID)
		default:
			drop = append(drop, r.UID)
		}
	}
	switch {
	case keep > 0 && len(drop) == 0:
		return action{kind: actNone}
	case keep > 0:
		return action{kind: actDropRefs, drop: drop}
	case waiting > 0 && hasBlocking:
		return action{kind: actDelete, policy: metav1.DeletePropagationForeground}
	default:
		return action{kind: actDelete, policy: metav1.DeletePropagationBackground}
	}
}

// unblocked returns refs with every blockOwnerDeletion set to false, and
// whether any was set. It breaks ownership cycles: an object about to be
// deleted in the foreground because an owner waits for it, while one of
// its own dependents waits in the foreground too, may be closing a circle
// of owners that each wait for the next; it stops blocking its owners
// first, so that they can go (upstream does the same).
func unblocked(refs []metav1.OwnerReference) ([]metav1.OwnerReference, bool) {
	out := make([]metav1.OwnerReference, len(refs))
	changed := false
	for i, r := range refs {
		if r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion {
			r.BlockOwnerDeletion = new(bool)
			changed = true
		}
		out[i] = r
	}
	return out, changed
}

// withoutOwners returns refs without those whose uid is in drop.
func withoutOwners(refs []metav1.OwnerReference, drop []types.UID) []metav1.OwnerReference {
	out := make([]metav1.OwnerReference, 0, len(refs))
	for _, r := range refs {
		if !slices.Contains(drop, r.UID) {
			out = append(out, r)
		}
	}
	return out
}

// withoutFinalizer returns finalizers without f.
func withoutFinalizer(finalizers []string, f string) []string {
	return slices.DeleteFunc(slices.Clone(finalizers), func(s string) bool { return s == f })
}

// metadataPatch is a JSON merge patch setting metadata fields. It carries
// resourceVersion (and uid), so that it fails with a Conflict when the
// object changed since it was read: the lists it writes are whole lists,
// computed from that read.
func metadataPatch(uid types.UID, rv string, field string, value any) ([]byte, error) {
	if v, ok := value.([]metav1.OwnerReference); ok && len(v) == 0 {
		value = nil
	}
	if v, ok := value.([]string); ok && len(v) == 0 {
		value = nil
	}
	return json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":             uid,
		"resourceVersion": rv,
		field:             value,
	}})
}
