package garbagecollector

import (
	"fmt"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

var (
	rsKind  = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}
	podKind = schema.GroupVersionKind{Version: "v1", Kind: "Pod"}
)

// recorded collects what the graph queues.
type recorded struct{ del, orphan []types.UID }

func (r *recorded) take() (del, orphan []types.UID) {
	del, orphan = r.del, r.orphan
	r.del, r.orphan = nil, nil
	slices.Sort(del)
	slices.Sort(orphan)
	return del, orphan
}

func obj(uid types.UID, owners ...types.UID) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: string(uid), Namespace: "ns", UID: uid}}
	for _, o := range owners {
		m.OwnerReferences = append(m.OwnerReferences, metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: string(o), UID: o, BlockOwnerDeletion: ptr.To(true)})
	}
	return m
}

func TestGraph(t *testing.T) {
	r := &recorded{}
	g := newGraph(func(u types.UID) { r.del = append(r.del, u) }, func(u types.UID) { r.orphan = append(r.orphan, u) })
	check := func(step string, wantDel, wantOrphan []types.UID) {
		t.Helper()
		del, orphan := r.take()
		if fmt.Sprint(del) != fmt.Sprint(wantDel) || fmt.Sprint(orphan) != fmt.Sprint(wantOrphan) {
			t.Fatalf("%s: queued delete=%v orphan=%v, want %v %v", step, del, orphan, wantDel, wantOrphan)
		}
	}

	// A pod seen before its owner: the owner is virtual and checked.
	g.observe(podKind, obj("p1", "rs"))
	check("pod before owner", []types.UID{"rs"}, nil)
	if s, _ := g.get("rs"); !s.virtual || len(s.dependents) != 1 || !s.hasBlocking() {
		t.Fatalf("virtual owner %+v", s)
	}
	g.observe(rsKind, obj("rs"))
	g.observe(podKind, obj("p2", "rs"))
	check("owner observed", nil, nil)
	s, _ := g.get("rs")
	if s.virtual || s.ref.Kind != "ReplicaSet" || len(s.dependents) != 2 {
		t.Fatalf("owner %+v", s)
	}
	if p, _ := g.get("p1"); p.ownerNodes["rs"].ref.UID != "rs" {
		t.Fatalf("pod snapshot lacks its owner: %+v", p)
	}

	// Foreground deletion of the owner queues it and its dependents.
	fg := obj("rs")
	fg.DeletionTimestamp = ptr.To(metav1.Now())
	fg.Finalizers = []string{metav1.FinalizerDeleteDependents}
	g.observe(rsKind, fg)
	check("foreground", []types.UID{"p1", "p2", "rs"}, nil)

	// A dependent dropping its reference re-queues the waiting owner.
	g.observe(podKind, obj("p2"))
	check("reference dropped", []types.UID{"rs"}, nil)
	if s, _ := g.get("rs"); len(s.dependents) != 1 {
		t.Fatalf("dependents %+v", s.dependents)
	}
	// A dependent going away re-queues it too.
	g.forget(obj("p1"))
	check("dependent gone", []types.UID{"rs"}, nil)

	// Orphan deletion queues the owner for orphaning.
	g.observe(rsKind, obj("rs2"))
	g.observe(podKind, obj("p3", "rs2"))
	r.take()
	or := obj("rs2")
	or.DeletionTimestamp = ptr.To(metav1.Now())
	or.Finalizers = []string{metav1.FinalizerOrphanDependents}
	g.observe(rsKind, or)
	check("orphan", nil, []types.UID{"rs2"})
	// A dependent that shows up while its owner is orphaning is checked:
	// its reference is to be dropped.
	g.observe(podKind, obj("p6", "rs2"))
	check("dependent of an orphaning owner", []types.UID{"p6"}, nil)

	// The owner going away queues its dependents.
	g.forget(obj("rs2"))
	check("owner gone", []types.UID{"p3", "p6"}, nil)

	// A virtual owner found absent leaves; its dependents are queued, and
	// it leaves no trace once they drop it.
	g.observe(podKind, obj("p4", "ghost"))
	check("dangling", []types.UID{"ghost"}, nil)
	g.removeVirtual("ghost")
	check("virtual removed", []types.UID{"p4"}, nil)
	g.observe(podKind, obj("p5", "ghost2"))
	g.observe(podKind, obj("p5"))
	if _, ok := g.get("ghost2"); ok {
		t.Fatal("unreferenced virtual node kept")
	}
	g.observe(podKind, nil) // no panic on nil
	g.forget(nil)
}

// BenchmarkGraph50k builds the graph of 50,000 objects: 10,000 owners
// with four dependents each.
func BenchmarkGraph50k(b *testing.B) {
	for b.Loop() {
		g := newGraph(func(types.UID) {}, func(types.UID) {})
		for i := range 10000 {
			owner := types.UID(fmt.Sprintf("rs-%d", i))
			g.observe(rsKind, obj(owner))
			for j := range 4 {
				g.observe(podKind, obj(types.UID(fmt.Sprintf("p-%d-%d", i, j)), owner))
			}
		}
		if g.size() != 50000 {
			b.Fatalf("size %d", g.size())
		}
	}
}

// An owner of a kind the collector started watching after it was named
// (a new custom resource) is checked again once that kind's informer has
// listed: the owners still virtual then are queued, other kinds' are not.
func TestRecheckVirtual(t *testing.T) {
	r := &recorded{}
	g := newGraph(func(u types.UID) { r.del = append(r.del, u) }, func(u types.UID) { r.orphan = append(r.orphan, u) })
	widget := schema.GroupVersionKind{Group: "crwatch.skiff.io", Version: "v1", Kind: "Widget"}
	cm := obj("cm")
	cm.OwnerReferences = []metav1.OwnerReference{{APIVersion: "crwatch.skiff.io/v1", Kind: "Widget", Name: "w1", UID: "w1"}}
	g.observe(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, cm)
	g.observe(podKind, obj("p1", "rs")) // a virtual ReplicaSet
	r.take()

	g.recheckVirtual(widget)
	if del, _ := r.take(); !slices.Equal(del, []types.UID{"w1"}) {
		t.Fatalf("queued %v after the Widget informer listed, want [w1]", del)
	}
	g.recheckVirtual(schema.GroupVersionKind{Group: "other.io", Version: "v1", Kind: "Widget"})
	if del, _ := r.take(); len(del) != 0 {
		t.Fatalf("queued %v for another group's Widget", del)
	}
	// Once observed, an owner is no longer virtual: nothing to check.
	g.observe(widget, obj("w1"))
	r.take()
	g.recheckVirtual(widget)
	if del, _ := r.take(); len(del) != 0 {
		t.Fatalf("queued %v for an observed owner", del)
	}
}
