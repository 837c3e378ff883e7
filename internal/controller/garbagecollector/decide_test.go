package garbagecollector

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestDecide(t *testing.T) {
	refs := func(uids ...types.UID) []metav1.OwnerReference {
		var out []metav1.OwnerReference
		for _, u := range uids {
			out = append(out, metav1.OwnerReference{UID: u, Name: string(u)})
		}
		return out
	}
	S, D, W, O := ownerSolid, ownerDangling, ownerWaiting, ownerOrphaning
	for _, tc := range []struct {
		name     string
		refs     []metav1.OwnerReference
		states   map[types.UID]ownerState
		blocking bool
		want     action
	}{
		{"no owners", nil, nil, false, action{kind: actNone}},
		{"solid owner", refs("a"), map[types.UID]ownerState{"a": S}, false, action{kind: actNone}},
		{"unknown state counts as solid", refs("a"), nil, false, action{kind: actNone}},
		{"dangling owner", refs("a"), map[types.UID]ownerState{"a": D}, false,
			action{kind: actDelete, policy: metav1.DeletePropagationBackground}},
		{"all dangling", refs("a", "b"), map[types.UID]ownerState{"a": D, "b": D}, true,
			action{kind: actDelete, policy: metav1.DeletePropagationBackground}},
		{"one dangling one solid", refs("a", "b"), map[types.UID]ownerState{"a": D, "b": S}, false,
			action{kind: actDropRefs, drop: []types.UID{"a"}}},
		{"waiting and solid", refs("a", "b"), map[types.UID]ownerState{"a": W, "b": S}, false,
			action{kind: actDropRefs, drop: []types.UID{"a"}}},
		{"waiting", refs("a"), map[types.UID]ownerState{"a": W}, false,
			action{kind: actDelete, policy: metav1.DeletePropagationBackground}},
		{"waiting with blocking dependents", refs("a"), map[types.UID]ownerState{"a": W}, true,
			action{kind: actDelete, policy: metav1.DeletePropagationForeground}},
		{"waiting and dangling", refs("a", "b"), map[types.UID]ownerState{"a": W, "b": D}, true,
			action{kind: actDelete, policy: metav1.DeletePropagationForeground}},
		{"orphaning owner: kept, reference dropped", refs("a"), map[types.UID]ownerState{"a": O}, true,
			action{kind: actDropRefs, drop: []types.UID{"a"}}},
		{"orphaning and dangling: kept", refs("a", "b"), map[types.UID]ownerState{"a": O, "b": D}, false,
			action{kind: actDropRefs, drop: []types.UID{"a", "b"}}},
		{"orphaning and waiting: kept", refs("a", "b"), map[types.UID]ownerState{"a": O, "b": W}, true,
			action{kind: actDropRefs, drop: []types.UID{"a", "b"}}},
		{"orphaning and solid", refs("a", "b"), map[types.UID]ownerState{"a": S, "b": O}, false,
			action{kind: actDropRefs, drop: []types.UID{"b"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decide(tc.refs, tc.states, tc.blocking)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(action{})); diff != "" {
				t.Fatalf("decide (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMetadataPatch(t *testing.T) {
	b, err := metadataPatch("u", "7", "ownerReferences", []metav1.OwnerReference{})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"metadata":{"ownerReferences":null,"resourceVersion":"7","uid":"u"}}`; string(b) != want {
		t.Fatalf("patch %s, want %s", b, want)
	}
	b, _ = metadataPatch("u", "7", "finalizers", []string{"x"})
	if want := `{"metadata":{"finalizers":["x"],"resourceVersion":"7","uid":"u"}}`; string(b) != want {
		t.Fatalf("patch %s, want %s", b, want)
	}
	if got := withoutOwners(refs2("a", "b", "c"), []types.UID{"b"}); len(got) != 2 || got[0].UID != "a" || got[1].UID != "c" {
		t.Fatalf("withoutOwners = %v", got)
	}
	if got := withoutFinalizer([]string{"a", "orphan", "b"}, "orphan"); cmp.Diff([]string{"a", "b"}, got) != "" {
		t.Fatalf("withoutFinalizer = %v", got)
	}
}

func refs2(uids ...types.UID) []metav1.OwnerReference {
	var out []metav1.OwnerReference
	for _, u := range uids {
		out = append(out, metav1.OwnerReference{UID: u})
	}
	return out
}
