package garbagecollector

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
)

// sweepPageSize is the page size of the lists a sweep reads.
const sweepPageSize = 500

// liveDependent is an object the server holds that names some owner.
type liveDependent struct {
	ref objectRef
	// blocking: its reference to the owner has blockOwnerDeletion.
	blocking bool
	deleting bool
}

// liveDependents lists from the server every object that names owner in
// its ownerReferences.
//
// It exists because the graph cannot answer that question when it
// matters: each resource has its own watch, and nothing orders the events
// of one resource against another's. When an owner's orphan or
// foregroundDeletion finalizer shows up in the graph, a dependent created
// just before the DELETE may not have: its resource's watch can lag. If
// the finalizer were removed on the graph's word, the owner would be gone
// by the time the dependent showed up, and a dependent that was to be
// orphaned would be collected as dangling, or one that was to go before
// its owner would go after it. A live list is a consistent read made
// after the finalizer was set, so it sees every dependent created before
// the DELETE. An object created after the list names an owner already
// being deleted; the graph judges it when it shows up (decide: an
// orphaning owner's reference is dropped, a gone owner's is dangling).
// (Upstream's collector trusts its graph here and lists this race among
// its known issues, kubernetes/kubernetes#26120; skiff pays the lists
// instead, and only when the graph says the work is done: about once per
// orphan or foreground deletion.)
//
// A namespaced owner's dependents are looked for in its namespace (a
// cluster-scoped object cannot be owned by a namespaced one); a
// cluster-scoped owner's in every resource and namespace. The resources
// are those the collector watches and those discovery lists now, so that
// a resource whose monitor the next resync would start is not missed. A
// resource that is gone by the time it is listed is skipped; any other
// error is returned, as the answer would be incomplete.
func (c *Controller) liveDependents(ctx context.Context, owner objectRef) ([]liveDependent, error) {
	start := time.Now()
	resources, err := c.sweptResources()
	if err != nil {
		return nil, err
	}
	var out []liveDependent
	listed := 0
	for gvr, info := range resources {
		if owner.Namespace != "" && !info.namespaced {
			continue
		}
		found, err := c.listDependents(ctx, gvr, info, owner)
		if err != nil {
			return nil, err
		}
		listed++
		out = append(out, found...)
	}
	c.log.Debug("listed dependents", "kind", owner.Kind, "namespace", owner.Namespace, "name", owner.Name,
		"resources", listed, "dependents", len(out), "took", time.Since(start))
	return out, nil
}

// sweptResources returns the resources liveDependents lists: what
// discovery lists now as collectable, and every resource the collector
// watches (a group whose discovery failed this time keeps its monitors).
func (c *Controller) sweptResources() (map[schema.GroupVersionResource]resourceInfo, error) {
	lists, err := c.discovery.ServerPreferredResources()
	if len(lists) == 0 && err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if err != nil {
		c.log.Warn("partial discovery failure; looking for dependents in the resources found and those watched", "err", err)
	}
	out := collectable(lists)
	c.mu.Lock()
	defer c.mu.Unlock()
	for gvr, m := range c.monitors {
		if _, ok := out[gvr]; !ok {
			out[gvr] = m.resourceInfo
		}
	}
	return out, nil
}

// listDependents lists gvr page by page and returns the objects that name
// owner.
func (c *Controller) listDependents(ctx context.Context, gvr schema.GroupVersionResource, info resourceInfo, owner objectRef) ([]liveDependent, error) {
	var ri metadata.ResourceInterface = c.metadata.Resource(gvr)
	if info.namespaced && owner.Namespace != "" {
		ri = c.metadata.Resource(gvr).Namespace(owner.Namespace)
	}
	var out []liveDependent
	opts := metav1.ListOptions{Limit: sweepPageSize}
	for {
		list, err := ri.List(ctx, opts)
		if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
			return nil, nil // the resource went away since discovery
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s for dependents of %s %s: %w", gvr, owner.Kind, owner.Name, err)
		}
		for i := range list.Items {
			m := &list.Items[i]
			for _, r := range m.OwnerReferences {
				if r.UID != owner.UID {
					continue
				}
				out = append(out, liveDependent{
					ref: objectRef{
						APIVersion: info.gvk.GroupVersion().String(), Kind: info.gvk.Kind,
						Namespace: m.Namespace, Name: m.Name, UID: m.UID,
					},
					blocking: r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion,
					deleting: m.DeletionTimestamp != nil,
				})
				break
			}
		}
		if list.Continue == "" {
			return out, nil
		}
		opts.Continue = list.Continue
	}
}
