package garbagecollector

import (
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// objectRef is the identity of one object.
type objectRef struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	UID        types.UID
}

// node is one object in the ownership graph. A virtual node is an owner
// that some object names but that no informer has shown: it may not
// exist, and the collector checks with a live GET.
type node struct {
	ref        objectRef
	owners     []metav1.OwnerReference
	dependents map[*node]struct{}
	virtual    bool
	// deleting: deletionTimestamp is set.
	deleting bool
	// deletingDependents: deleting, with the foregroundDeletion finalizer.
	deletingDependents bool
	// orphaning: deleting, with the orphan finalizer.
	orphaning bool
}

// graph is the ownership graph of every watched object, keyed by uid. It
// is safe for concurrent use: informer handlers write it, workers read
// snapshots of it.
type graph struct {
	mu    sync.Mutex
	nodes map[types.UID]*node
	// enqueue hands work to the collector's queues.
	attemptDelete func(types.UID)
	attemptOrphan func(types.UID)
}

func newGraph(del, orphan func(types.UID)) *graph {
	return &graph{nodes: map[types.UID]*node{}, attemptDelete: del, attemptOrphan: orphan}
}

// observe records an added or updated object of kind gvk.
func (g *graph) observe(gvk schema.GroupVersionKind, m *metav1.PartialObjectMetadata) {
	if m == nil || m.UID == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	ref := objectRef{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Namespace: m.Namespace, Name: m.Name, UID: m.UID}
	n := g.nodes[m.UID]
	var oldOwners []metav1.OwnerReference
	switch {
	case n == nil:
		n = &node{dependents: map[*node]struct{}{}}
		g.nodes[m.UID] = n
	case n.virtual:
		n.virtual = false
		defer g.checkInvalidDependents(n)
	default:
		oldOwners = n.owners
	}
	n.ref = ref
	n.owners = slices.Clone(m.OwnerReferences)
	n.deleting = m.DeletionTimestamp != nil
	n.deletingDependents = n.deleting && slices.Contains(m.Finalizers, metav1.FinalizerDeleteDependents)
	n.orphaning = n.deleting && slices.Contains(m.Finalizers, metav1.FinalizerOrphanDependents)

	// Unlink from owners no longer named, link to the new ones.
	for _, r := range oldOwners {
		if hasOwner(n.owners, r.UID) {
			continue
		}
		if o := g.nodes[r.UID]; o != nil {
			delete(o.dependents, n)
			g.dropIfUnreferencedVirtual(o)
			if o.deletingDependents {
				g.attemptDelete(o.ref.UID)
			}
		}
	}
	checkSelf := false
	for _, r := range n.owners {
		o := g.nodes[r.UID]
		if o == nil {
			o = &node{
				ref:        objectRef{APIVersion: r.APIVersion, Kind: r.Kind, Namespace: m.Namespace, Name: r.Name, UID: r.UID},
				dependents: map[*node]struct{}{},
				virtual:    true,
			}
			g.nodes[r.UID] = o
			g.attemptDelete(r.UID) // does it exist?
		}
		o.dependents[n] = struct{}{}
		if !o.virtual && !validOwner(ref, o.ref) {
			checkSelf = true // a namespaced owner outside n's namespace
		}
		if o.deletingDependents {
			checkSelf = true
			g.attemptDelete(o.ref.UID) // blockOwnerDeletion may have changed
		}
		if o.orphaning {
			// Seen after its owner began orphaning (perhaps after the
			// orphaning read its dependents): the reference is dropped,
			// never followed.
			checkSelf = true
		}
	}
	if checkSelf {
		g.attemptDelete(n.ref.UID)
	}
	if n.orphaning {
		g.attemptOrphan(n.ref.UID)
	}
	if n.deletingDependents {
		g.attemptDelete(n.ref.UID)
		for d := range n.dependents {
			g.attemptDelete(d.ref.UID)
		}
	}
}

// forget removes a deleted object. Its dependents are checked (their owner
// may now be gone); an owner waiting for it is checked again.
func (g *graph) forget(m *metav1.PartialObjectMetadata) {
	if m == nil || m.UID == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.nodes[m.UID]
	if n == nil || n.virtual {
		return
	}
	g.remove(n)
}

// remove drops n from the graph and queues the nodes that n's absence
// concerns. Called with g.mu held.
func (g *graph) remove(n *node) {
	delete(g.nodes, n.ref.UID)
	for _, r := range n.owners {
		if o := g.nodes[r.UID]; o != nil {
			delete(o.dependents, n)
			g.dropIfUnreferencedVirtual(o)
			if o.deletingDependents {
				g.attemptDelete(o.ref.UID)
			}
		}
	}
	for d := range n.dependents {
		g.attemptDelete(d.ref.UID)
	}
}

// recheckVirtual queues the virtual nodes of kind gvk. Called once an
// informer of gvk's resource has listed: the owners it did not show did
// not exist then, and their dependents must not wait for an event (an
// owner of a resource defined after the collector last read discovery,
// created and deleted before its monitor started, sends none).
func (g *graph) recheckVirtual(gvk schema.GroupVersionKind) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for uid, n := range g.nodes {
		if !n.virtual || n.ref.Kind != gvk.Kind {
			continue
		}
		if gv, err := schema.ParseGroupVersion(n.ref.APIVersion); err == nil && gv.Group == gvk.Group {
			g.attemptDelete(uid)
		}
	}
}

// removeVirtual drops a virtual node that a live GET found absent.
func (g *graph) removeVirtual(uid types.UID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := g.nodes[uid]; n != nil && n.virtual {
		g.remove(n)
	}
}

// checkInvalidDependents queues the dependents that a newly observed
// owner cannot own. Called with g.mu held.
func (g *graph) checkInvalidDependents(n *node) {
	for d := range n.dependents {
		if !validOwner(d.ref, n.ref) {
			g.attemptDelete(d.ref.UID)
		}
	}
}

func (g *graph) dropIfUnreferencedVirtual(o *node) {
	if o.virtual && len(o.dependents) == 0 {
		delete(g.nodes, o.ref.UID)
	}
}

func hasOwner(refs []metav1.OwnerReference, uid types.UID) bool {
	return slices.ContainsFunc(refs, func(r metav1.OwnerReference) bool { return r.UID == uid })
}

// dependentInfo is what a worker needs to know of one dependent.
type dependentInfo struct {
	ref      objectRef
	blocking bool // its reference to the owner has blockOwnerDeletion
	deleting bool
	// deletingDependents: it is being deleted in the foreground.
	deletingDependents bool
}

// snapshot is a copy of one node and of its neighbours, taken under the
// lock so that a worker can act on it without holding the lock.
type snapshot struct {
	node
	dependents []dependentInfo
	// owners maps each owner uid the graph knows as observed to its node
	// copy (without neighbours).
	ownerNodes map[types.UID]node
}

// get returns a snapshot of the node with uid, or false.
func (g *graph) get(uid types.UID) (snapshot, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.nodes[uid]
	if n == nil {
		return snapshot{}, false
	}
	s := snapshot{node: *n, ownerNodes: map[types.UID]node{}}
	s.node.dependents = nil
	s.node.owners = slices.Clone(n.owners)
	for d := range n.dependents {
		blocking := false
		for _, r := range d.owners {
			if r.UID == uid && r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion {
				blocking = true
			}
		}
		s.dependents = append(s.dependents, dependentInfo{ref: d.ref, blocking: blocking, deleting: d.deleting, deletingDependents: d.deletingDependents})
	}
	for _, r := range n.owners {
		if o := g.nodes[r.UID]; o != nil && !o.virtual {
			c := *o
			c.dependents, c.owners = nil, nil
			s.ownerNodes[r.UID] = c
		}
	}
	return s, true
}

// hasBlocking reports whether any dependent blocks the owner's deletion.
func (s snapshot) hasBlocking() bool {
	return slices.ContainsFunc(s.dependents, func(d dependentInfo) bool { return d.blocking })
}

// dependentWaiting reports whether a dependent is itself being deleted in
// the foreground, waiting for its own dependents.
func (s snapshot) dependentWaiting() bool {
	return slices.ContainsFunc(s.dependents, func(d dependentInfo) bool { return d.deletingDependents })
}

// size is the number of nodes, virtual ones included.
func (g *graph) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.nodes)
}
