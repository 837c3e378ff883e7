package garbagecollector_test

import (
	"context"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/skiff-io/skiff/internal/controller/garbagecollector"
)

// gate holds back the collector's view of one object. Once armed, the
// informer event that first shows the object blocks until release, and
// with it every later event of the object's resource: the graph trails the
// server for that resource, as it does when a watch lags under load.
type gate struct {
	mu                    sync.Mutex
	kind, namespace, name string
	open                  chan struct{} // nil when not armed
}

// hold is the collector's event hook (garbagecollector.HoldEvents).
func (g *gate) hold(gvk schema.GroupVersionKind, m *metav1.PartialObjectMetadata) {
	g.mu.Lock()
	wait := g.open
	match := wait != nil && gvk.Kind == g.kind && m.Namespace == g.namespace && m.Name == g.name
	g.mu.Unlock()
	if match {
		<-wait
	}
}

// arm holds back the events of the object of kind named namespace/name
// until release (which t's cleanup also calls).
func (g *gate) arm(t *testing.T, kind, namespace, name string) (release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.kind, g.namespace, g.name = kind, namespace, name
	g.open = make(chan struct{})
	t.Cleanup(g.release)
	return g.release
}

// release lets the held events through; it is idempotent.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open != nil {
		close(g.open)
		g.open = nil
	}
}

// kind is a resource the tests make objects of through the dynamic
// client, so that one test body serves owners and dependents of any kind.
type kind struct {
	gvr        schema.GroupVersionResource
	apiVersion string
	kind       string
	namespaced bool
	// spec is what an object needs beyond metadata (nil: nothing).
	spec map[string]any
}

var (
	replicaSets = kind{
		gvr: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}, apiVersion: "apps/v1", kind: "ReplicaSet", namespaced: true,
		spec: map[string]any{"spec": map[string]any{
			"replicas": int64(0),
			"selector": map[string]any{"matchLabels": map[string]any{"app": "late"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "late"}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "c", "image": "busybox"}}},
			},
		}},
	}
	clusterRoles = kind{
		gvr: schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}, apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole",
	}
	pods = kind{
		gvr: schema.GroupVersionResource{Version: "v1", Resource: "pods"}, apiVersion: "v1", kind: "Pod", namespaced: true,
		spec: map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "busybox"}}}},
	}
	configMaps = kind{
		gvr: schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, apiVersion: "v1", kind: "ConfigMap", namespaced: true,
	}
)

// seenLateCase is an owner deleted with policy while it has two
// dependents with blockOwnerDeletion: one the collector has observed, and
// one created just before the delete whose informer events the collector
// is held back from until the owner's deletion has played out. For
// foreground deletion the two are of different kinds: holding one kind's
// informer must not hold back the deletion events of the other dependent.
type seenLateCase struct {
	name string
	// prefix starts the names of the case's objects.
	prefix            string
	policy            metav1.DeletionPropagation
	owner, seen, late kind
}

var seenLateCases = []seenLateCase{
	{"orphan, dependent seen after its owner is gone", "late-or-", metav1.DeletePropagationOrphan, replicaSets, pods, pods},
	{"orphan, cluster-scoped owner", "late-orc-", metav1.DeletePropagationOrphan, clusterRoles, pods, configMaps},
	{"foreground, owner waits for a dependent not yet seen", "late-fg-", metav1.DeletePropagationForeground, replicaSets, pods, configMaps},
	{"foreground, cluster-scoped owner", "late-fgc-", metav1.DeletePropagationForeground, clusterRoles, configMaps, pods},
}

// seenLate checks that a dependent the collector sees only after its
// owner is gone is orphaned when the owner was deleted with orphan
// propagation, and that an owner deleted in the foreground is not
// deleted before such a dependent.
func (e *env) seenLate(t *testing.T, tc seenLateCase) {
	prefix := tc.prefix
	owner := e.create(t, tc.owner, prefix+"owner", nil)
	seen := e.create(t, tc.seen, prefix+"seen", owner)
	e.waitObserved(t, seen)
	release := e.gate.arm(t, tc.late.kind, ns, prefix+"late")
	late := e.create(t, tc.late, prefix+"late", owner)

	if err := e.resource(tc.owner).Delete(e.ctx, owner.GetName(), metav1.DeleteOptions{PropagationPolicy: &tc.policy}); err != nil {
		t.Fatal(err)
	}
	e.waitGone(t, tc.owner.kind+" "+owner.GetName(), func() error {
		_, err := e.resource(tc.owner).Get(e.ctx, owner.GetName(), metav1.GetOptions{})
		return err
	})
	switch tc.policy {
	case metav1.DeletePropagationForeground:
		// The owner is gone: every blocking dependent went before it, the
		// one the collector has not seen included.
		for _, d := range []struct {
			k   kind
			obj *unstructured.Unstructured
		}{{tc.seen, seen}, {tc.late, late}} {
			_, err := e.resource(d.k).Get(e.ctx, d.obj.GetName(), metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				t.Fatalf("%s %s outlived its owner, deleted in the foreground: %v", d.k.kind, d.obj.GetName(), err)
			}
		}
		release()
	case metav1.DeletePropagationOrphan:
		release()
		e.waitOrphaned(t, tc.seen, seen)
		e.waitOrphaned(t, tc.late, late)
	}
}

func (e *env) resource(k kind) dynamic.ResourceInterface {
	if k.namespaced {
		return e.dyn.Resource(k.gvr).Namespace(ns)
	}
	return e.dyn.Resource(k.gvr)
}

// create makes an object of kind k named name, owned (with
// blockOwnerDeletion) by owner when owner is not nil.
func (e *env) create(t *testing.T, k kind, name string, owner *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{Object: map[string]any{}}
	for f, v := range k.spec {
		obj.Object[f] = v
	}
	obj.SetAPIVersion(k.apiVersion)
	obj.SetKind(k.kind)
	obj.SetName(name)
	if owner != nil {
		block := true
		obj.SetOwnerReferences([]metav1.OwnerReference{{
			APIVersion: owner.GetAPIVersion(), Kind: owner.GetKind(), Name: owner.GetName(), UID: owner.GetUID(), BlockOwnerDeletion: &block,
		}})
	}
	out, err := e.resource(k).Create(e.ctx, obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating %s %s: %v", k.kind, name, err)
	}
	return out
}

// waitObserved waits until the collector's graph has observed obj.
func (e *env) waitObserved(t *testing.T, obj *unstructured.Unstructured) {
	t.Helper()
	err := wait.PollUntilContextTimeout(e.ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		_, ok := garbagecollector.ObservedOwners(e.gc, obj.GetUID())
		return ok, nil
	})
	if err != nil {
		t.Fatalf("the collector never observed %s %s: %v", obj.GetKind(), obj.GetName(), err)
	}
}

// waitOrphaned waits until obj has no owner references and the collector
// has observed it so. From then on nothing in the collector can delete it:
// every deletion decision reads the object live first. A deletion before
// that point fails the test.
func (e *env) waitOrphaned(t *testing.T, k kind, obj *unstructured.Unstructured) {
	t.Helper()
	err := wait.PollUntilContextTimeout(e.ctx, 10*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		cur, err := e.resource(k).Get(ctx, obj.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			t.Fatalf("%s %s was deleted, but its owner was deleted with orphan propagation", k.kind, obj.GetName())
		}
		if err != nil || len(cur.GetOwnerReferences()) > 0 {
			return false, nil
		}
		owners, ok := garbagecollector.ObservedOwners(e.gc, obj.GetUID())
		return ok && len(owners) == 0, nil
	})
	if err != nil {
		t.Fatalf("%s %s not orphaned: %v", k.kind, obj.GetName(), err)
	}
}
