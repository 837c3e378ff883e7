package garbagecollector

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
)

// resource returns the client of the object ref names, and its namespace
// as the client needs it ("" when the kind is cluster-scoped).
func (c *Controller) resource(ref objectRef) (metadata.ResourceInterface, bool, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, false, fmt.Errorf("%s %s: %w", ref.Kind, ref.Name, err)
	}
	m, err := c.mapper.RESTMapping(gv.WithKind(ref.Kind).GroupKind(), gv.Version)
	if meta.IsNoMatchError(err) && c.rereadDiscovery() {
		// A kind defined since discovery was read (a new custom
		// resource): its owner references must not wait for the resync.
		m, err = c.mapper.RESTMapping(gv.WithKind(ref.Kind).GroupKind(), gv.Version)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s %s: %w", ref.Kind, ref.Name, err)
	}
	namespaced := m.Scope.Name() == meta.RESTScopeNameNamespace
	if namespaced {
		return c.metadata.Resource(m.Resource).Namespace(ref.Namespace), true, nil
	}
	return c.metadata.Resource(m.Resource), false, nil
}

// rereadDiscovery makes the mapper read discovery again on its next use,
// at most once a second, and reports whether it did.
func (c *Controller) rereadDiscovery() bool {
	now := time.Now().UnixNano()
	last := c.mapperReset.Load()
	if now-last < int64(time.Second) || !c.mapperReset.CompareAndSwap(last, now) {
		return false
	}
	c.mapper.Reset()
	return true
}

// getLive reads the object ref names from the server. It returns nil (and
// no error) when no object of that name and uid exists.
func (c *Controller) getLive(ctx context.Context, ref objectRef) (*metav1.PartialObjectMetadata, error) {
	ri, _, err := c.resource(ref)
	if err != nil {
		return nil, err
	}
	obj, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting %s %s/%s: %w", ref.Kind, ref.Namespace, ref.Name, err)
	}
	if obj.UID != ref.UID {
		return nil, nil
	}
	return obj, nil
}

// attemptToDelete processes the node with uid key: a virtual owner is
// checked for existence; an owner deleting its dependents in the
// foreground loses its finalizer once no blocking dependent remains; any
// other object with owners is deleted, or stripped of references, as
// decide says.
func (c *Controller) attemptToDelete(ctx context.Context, key string) error {
	s, ok := c.graph.get(types.UID(key))
	if !ok {
		return nil
	}
	switch {
	case s.virtual:
		return c.checkVirtual(ctx, s)
	case s.deletingDependents:
		return c.finishForeground(ctx, s)
	case s.deleting || len(s.owners) == 0:
		return nil
	}
	// Fast path: every owner is in the graph, alive and valid.
	if c.ownersSolidInGraph(s) {
		return nil
	}
	return c.collect(ctx, s)
}

// collect reads the object s stands for from the server and, as decide
// says from its live owner references, deletes it or removes references
// from it. s supplies what the graph knows besides: the owners it has
// observed and the object's own dependents. An object that is gone or
// being deleted is left alone.
func (c *Controller) collect(ctx context.Context, s snapshot) error {
	latest, err := c.getLive(ctx, s.ref)
	if err != nil || latest == nil || latest.DeletionTimestamp != nil {
		return err // gone or going: its events will follow
	}
	states := map[types.UID]ownerState{}
	for _, r := range latest.OwnerReferences {
		st, err := c.ownerState(ctx, s, r)
		if err != nil {
			return err
		}
		states[r.UID] = st
	}
	act := decide(latest.OwnerReferences, states, s.hasBlocking())
	ri, _, err := c.resource(s.ref)
	if err != nil {
		return err
	}
	switch act.kind {
	case actDropRefs:
		patch, err := metadataPatch(latest.UID, latest.ResourceVersion, "ownerReferences", withoutOwners(latest.OwnerReferences, act.drop))
		if err != nil {
			return err
		}
		c.log.Info("removing owner references", "kind", s.ref.Kind, "namespace", s.ref.Namespace, "name", s.ref.Name, "owners", act.drop)
		_, err = ri.Patch(ctx, s.ref.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		return ignoreNotFound(err)
	case actDelete:
		if act.policy == metav1.DeletePropagationForeground && s.dependentWaiting() {
			if refs, changed := unblocked(latest.OwnerReferences); changed {
				patch, err := metadataPatch(latest.UID, latest.ResourceVersion, "ownerReferences", refs)
				if err != nil {
					return err
				}
				c.log.Info("unblocking owners to break a possible ownership cycle", "kind", s.ref.Kind, "namespace", s.ref.Namespace, "name", s.ref.Name)
				if _, err := ri.Patch(ctx, s.ref.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
					return ignoreNotFound(err)
				}
			}
		}
		c.log.Info("deleting object whose owners are gone", "kind", s.ref.Kind, "namespace", s.ref.Namespace, "name", s.ref.Name, "propagation", act.policy)
		err := ri.Delete(ctx, s.ref.Name, deleteOptions(s.ref.UID, act.policy))
		if apierrors.IsConflict(err) {
			return nil // another object of that name now: not ours
		}
		return ignoreNotFound(err)
	}
	return nil
}

// ownersSolidInGraph reports whether every owner of s is an observed node
// that is neither waiting for its dependents nor orphaning them, and that
// may own s (a namespaced owner lives in s's namespace).
func (c *Controller) ownersSolidInGraph(s snapshot) bool {
	for _, r := range s.owners {
		o, ok := s.ownerNodes[r.UID]
		if !ok || o.deletingDependents || o.orphaning || !validOwner(s.ref, o.ref) {
			return false
		}
	}
	return true
}

// validOwner: a cluster-scoped owner may own anything; a namespaced owner
// only objects of its own namespace.
func validOwner(dependent, owner objectRef) bool {
	return owner.Namespace == "" || owner.Namespace == dependent.Namespace
}

// ownerState finds the owner r of s: from the graph when the graph has
// it, else with a live GET.
func (c *Controller) ownerState(ctx context.Context, s snapshot, r metav1.OwnerReference) (ownerState, error) {
	if o, ok := s.ownerNodes[r.UID]; ok && validOwner(s.ref, o.ref) {
		switch {
		case o.deletingDependents:
			return ownerWaiting, nil
		case o.orphaning:
			return ownerOrphaning, nil
		}
		return ownerSolid, nil
	}
	ref := objectRef{APIVersion: r.APIVersion, Kind: r.Kind, Namespace: s.ref.Namespace, Name: r.Name, UID: r.UID}
	ri, namespaced, err := c.resource(ref)
	if err != nil {
		return ownerSolid, err
	}
	if namespaced && s.ref.Namespace == "" {
		// A cluster-scoped object cannot have a namespaced owner: the
		// reference can never resolve (upstream treats it as absent).
		c.recordInvalid(s.ref, r)
		return ownerDangling, nil
	}
	obj, err := ri.Get(ctx, r.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return ownerDangling, nil
	case err != nil:
		return ownerSolid, fmt.Errorf("getting owner %s %s: %w", r.Kind, r.Name, err)
	case obj.UID != r.UID:
		return ownerDangling, nil
	case obj.DeletionTimestamp != nil && hasFinalizer(obj.Finalizers, metav1.FinalizerDeleteDependents):
		return ownerWaiting, nil
	case obj.DeletionTimestamp != nil && hasFinalizer(obj.Finalizers, metav1.FinalizerOrphanDependents):
		return ownerOrphaning, nil
	}
	return ownerSolid, nil
}

func (c *Controller) recordInvalid(dep objectRef, r metav1.OwnerReference) {
	if c.recorder == nil {
		return
	}
	obj := &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: dep.APIVersion, Kind: dep.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: dep.Name, Namespace: dep.Namespace, UID: dep.UID},
	}
	c.recorder.Eventf(obj, corev1.EventTypeWarning, "OwnerRefInvalidNamespace",
		"ownerRef [%s, namespace: %s, name: %s, uid: %s] does not exist in namespace %q", r.APIVersion+"/"+r.Kind, dep.Namespace, r.Name, r.UID, dep.Namespace)
}

// checkVirtual confirms with a live GET whether an owner only dependents
// have named exists. If not, it leaves the graph and its dependents are
// examined (and collected).
func (c *Controller) checkVirtual(ctx context.Context, s snapshot) error {
	ref := s.ref
	_, namespaced, err := c.resource(ref)
	if err != nil {
		return err
	}
	if !namespaced {
		ref.Namespace = ""
	}
	obj, err := c.getLive(ctx, ref)
	if err != nil {
		return err
	}
	if obj == nil || (namespaced && ref.Namespace == "") {
		c.graph.removeVirtual(s.ref.UID)
	}
	// It exists: its informer will show it (or, for a resource the
	// collector does not watch, it stays virtual and its dependents stay).
	return nil
}

// finishForeground removes the foregroundDeletion finalizer of an owner
// once none of its dependents blocks it; until then it makes sure each
// blocking dependent is being deleted.
//
// The graph's dependents are checked first; when the graph knows none
// that blocks, the server is asked (liveDependents), since a dependent
// created just before the owner's DELETE may not be in the graph yet.
// Such a dependent is judged at once from its live state, as
// attemptToDelete would judge it, and the owner is retried with back-off
// (errUnobservedDependents): no graph event is sure to bring it back
// before that dependent is observed.
func (c *Controller) finishForeground(ctx context.Context, s snapshot) error {
	blocking := false
	for _, d := range s.dependents {
		if !d.blocking {
			continue
		}
		blocking = true
		if !d.deleting {
			c.deleteQ.Add(string(d.ref.UID))
		}
	}
	if blocking {
		return nil // the dependents' delete events queue the owner again
	}
	live, err := c.liveDependents(ctx, s.ref)
	if err != nil {
		return fmt.Errorf("foreground deletion of %s %s/%s: %w", s.ref.Kind, s.ref.Namespace, s.ref.Name, err)
	}
	unobserved := 0
	for _, d := range live {
		if !d.blocking {
			continue
		}
		unobserved++
		if d.deleting {
			continue
		}
		if err := c.collect(ctx, c.unobserved(d.ref)); err != nil {
			return err
		}
	}
	if unobserved > 0 {
		return fmt.Errorf("foreground deletion of %s %s/%s waits for %d dependents: %w", s.ref.Kind, s.ref.Namespace, s.ref.Name, unobserved, errUnobservedDependents)
	}
	return c.removeFinalizer(ctx, s.ref, metav1.FinalizerDeleteDependents)
}

// unobserved returns the snapshot to judge an object by that the server
// holds but the graph has not observed as it is: the graph's node for it
// when there is one (a virtual node knows the object's own dependents),
// under the object's true coordinates.
func (c *Controller) unobserved(ref objectRef) snapshot {
	s, ok := c.graph.get(ref.UID)
	if !ok {
		return snapshot{node: node{ref: ref}}
	}
	s.ref = ref
	return s
}

// removeFinalizer patches finalizer f away from the object ref names.
func (c *Controller) removeFinalizer(ctx context.Context, ref objectRef, f string) error {
	latest, err := c.getLive(ctx, ref)
	if err != nil || latest == nil || !hasFinalizer(latest.Finalizers, f) {
		return err
	}
	patch, err := metadataPatch(latest.UID, latest.ResourceVersion, "finalizers", withoutFinalizer(latest.Finalizers, f))
	if err != nil {
		return err
	}
	ri, _, err := c.resource(ref)
	if err != nil {
		return err
	}
	c.log.Info("removing finalizer", "finalizer", f, "kind", ref.Kind, "namespace", ref.Namespace, "name", ref.Name)
	_, err = ri.Patch(ctx, ref.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	return ignoreNotFound(err)
}

// attemptToOrphan strips the owner's references from every dependent,
// then removes the owner's orphan finalizer. The dependents are read from
// the server (liveDependents), not from the graph: a dependent the graph
// has not observed yet would otherwise keep its reference to an owner
// that is then gone, and be collected as dangling.
func (c *Controller) attemptToOrphan(ctx context.Context, key string) error {
	s, ok := c.graph.get(types.UID(key))
	if !ok || s.virtual || !s.orphaning {
		return nil
	}
	live, err := c.liveDependents(ctx, s.ref)
	if err != nil {
		return fmt.Errorf("orphaning the dependents of %s %s/%s: %w", s.ref.Kind, s.ref.Namespace, s.ref.Name, err)
	}
	for _, d := range live {
		if err := c.dropOwner(ctx, d.ref, s.ref.UID); err != nil {
			return err
		}
	}
	return c.removeFinalizer(ctx, s.ref, metav1.FinalizerOrphanDependents)
}

// dropOwner removes the reference to owner from the object ref names.
func (c *Controller) dropOwner(ctx context.Context, ref objectRef, owner types.UID) error {
	latest, err := c.getLive(ctx, ref)
	if err != nil || latest == nil || !hasOwner(latest.OwnerReferences, owner) {
		return err
	}
	patch, err := metadataPatch(latest.UID, latest.ResourceVersion, "ownerReferences", withoutOwners(latest.OwnerReferences, []types.UID{owner}))
	if err != nil {
		return err
	}
	ri, _, err := c.resource(ref)
	if err != nil {
		return err
	}
	_, err = ri.Patch(ctx, ref.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	return ignoreNotFound(err)
}

func hasFinalizer(fs []string, f string) bool { return slices.Contains(fs, f) }

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
