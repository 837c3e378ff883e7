package garbagecollector

import (
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

type monitorKey = schema.GroupVersionResource

// resourceInfo is what the collector knows of one resource from
// discovery.
type resourceInfo struct {
	gvk        schema.GroupVersionKind
	namespaced bool
}

// monitor is the metadata informer of one resource.
type monitor struct {
	resourceInfo
	informer cache.SharedIndexInformer
	cancel   context.CancelFunc
}

// ignored are resources the collector never watches: events are many,
// short-lived and never own anything (as upstream).
var ignored = map[schema.GroupResource]bool{
	{Group: "", Resource: "events"}:              true,
	{Group: "events.k8s.io", Resource: "events"}: true,
}

// collectable returns the resources of discovery's preferred versions that
// the collector can watch and delete.
func collectable(lists []*metav1.APIResourceList) map[schema.GroupVersionResource]resourceInfo {
	out := map[schema.GroupVersionResource]resourceInfo{}
	for _, l := range lists {
		if l == nil {
			continue
		}
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || ignored[gv.WithResource(r.Name).GroupResource()] {
				continue
			}
			if !slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "watch") || !slices.Contains(r.Verbs, "delete") {
				continue
			}
			out[gv.WithResource(r.Name)] = resourceInfo{gvk: gv.WithKind(r.Kind), namespaced: r.Namespaced}
		}
	}
	return out
}

// resync reads discovery and starts a monitor for each new collectable
// resource, and stops those of resources that are gone. A partial
// discovery failure (one aggregated group down) keeps the monitors of the
// groups that failed.
func (c *Controller) resync(ctx context.Context) error {
	lists, err := c.discovery.ServerPreferredResources()
	if len(lists) == 0 && err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	partial := err != nil
	c.mapper.Reset()
	want := collectable(lists)
	c.mu.Lock()
	defer c.mu.Unlock()
	for gvr, info := range want {
		if _, ok := c.monitors[gvr]; ok {
			continue
		}
		c.monitors[gvr] = c.startMonitor(ctx, gvr, info)
		c.log.Debug("watching resource", "resource", gvr.String())
	}
	if !partial {
		for gvr, m := range c.monitors {
			if _, ok := want[gvr]; !ok {
				m.cancel()
				delete(c.monitors, gvr)
			}
		}
	}
	return nil
}

// startMonitor starts a metadata informer for gvr. Called with c.mu held.
func (c *Controller) startMonitor(ctx context.Context, gvr schema.GroupVersionResource, info resourceInfo) *monitor {
	gvk := info.gvk
	// The server sends metadata only; the transform below also drops what
	// the graph never reads (managed fields, annotations) before caching,
	// which dominates memory at 50,000 objects.
	inf := metadatainformer.NewFilteredMetadataInformer(c.metadata, gvr, metav1.NamespaceAll, 0, cache.Indexers{}, nil).Informer()
	_ = inf.SetTransform(slimMetadata)
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.graph.observe(gvk, c.held(gvk, obj)) },
		UpdateFunc: func(_, obj any) { c.graph.observe(gvk, c.held(gvk, obj)) },
		DeleteFunc: func(obj any) { c.graph.forget(c.held(gvk, obj)) },
	})
	mctx, cancel := context.WithCancel(ctx)
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		inf.RunWithContext(mctx)
	}()
	go func() {
		defer c.wg.Done()
		if cache.WaitForCacheSync(mctx.Done(), inf.HasSynced) {
			c.graph.recheckVirtual(gvk)
		}
	}()
	return &monitor{resourceInfo: info, informer: inf, cancel: cancel}
}

// held unwraps an informer object for the graph, first passing it
// through c.hold when a test has set one.
func (c *Controller) held(gvk schema.GroupVersionKind, obj any) *metav1.PartialObjectMetadata {
	m := asMetadata(obj)
	if c.hold != nil && m != nil {
		c.hold(gvk, m)
	}
	return m
}

func (c *Controller) stopMonitors() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for gvr, m := range c.monitors {
		m.cancel()
		delete(c.monitors, gvr)
	}
}

// asMetadata unwraps an informer object or a delete tombstone.
func asMetadata(obj any) *metav1.PartialObjectMetadata {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, _ := obj.(*metav1.PartialObjectMetadata)
	return m
}

// slimMetadata turns an object into PartialObjectMetadata holding only
// the fields the graph reads.
func slimMetadata(obj any) (any, error) {
	var m *metav1.PartialObjectMetadata
	switch o := obj.(type) {
	case *metav1.PartialObjectMetadata:
		m = o
	case *unstructured.Unstructured:
		m = &metav1.PartialObjectMetadata{
			TypeMeta: metav1.TypeMeta{APIVersion: o.GetAPIVersion(), Kind: o.GetKind()},
			ObjectMeta: metav1.ObjectMeta{
				Name:              o.GetName(),
				Namespace:         o.GetNamespace(),
				UID:               o.GetUID(),
				ResourceVersion:   o.GetResourceVersion(),
				DeletionTimestamp: o.GetDeletionTimestamp(),
				Finalizers:        o.GetFinalizers(),
				OwnerReferences:   o.GetOwnerReferences(),
			},
		}
	default:
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{
		TypeMeta: m.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:              m.Name,
			Namespace:         m.Namespace,
			UID:               m.UID,
			ResourceVersion:   m.ResourceVersion,
			DeletionTimestamp: m.DeletionTimestamp,
			Finalizers:        m.Finalizers,
			OwnerReferences:   m.OwnerReferences,
		},
	}, nil
}
