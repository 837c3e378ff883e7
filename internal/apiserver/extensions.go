package apiserver

import (
	"fmt"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"

	"github.com/skiff-io/skiff/internal/openapi"
	"github.com/skiff-io/skiff/internal/registry"
	"github.com/skiff-io/skiff/internal/storage"
)

// extensions are the resources added while the server runs (the custom
// resources of CustomResourceDefinitions), beside the built-in ones that
// New fixes. Readers load the whole set at once; Extend replaces it with
// a new one, so a request never takes a lock to find its resource.
type extensions struct {
	// byKey holds each Extend call's resources, by its key.
	byKey     map[string][]*served
	resources map[schema.GroupVersionResource]*served
	byKind    map[schema.GroupVersionKind]*served
	// stores are the running stores by key prefix, with what stops them.
	stores map[string]*extensionStore

	// openAPI holds the OpenAPI documents with the extensions in, built
	// on first use.
	openAPIOnce sync.Once
	openAPI     *openAPIDoc
}

// openapi returns the documents of base's resources and the extensions.
func (e *extensions) openapi(base *openAPIDoc) *openAPIDoc {
	e.openAPIOnce.Do(func() { e.openAPI = &openAPIDoc{base: base, resources: openAPIResourcesOf(e.resources)} })
	return e.openAPI
}

type extensionStore struct {
	store storage.Interface
	gvk   schema.GroupVersionKind
	stop  func()
}

// lookup returns the served resource of gvr: a built-in one, or one added
// by Extend.
func (s *Server) lookup(gvr schema.GroupVersionResource) (*served, bool) {
	if sv, ok := s.resources[gvr]; ok {
		return sv, true
	}
	if ext := s.ext.Load(); ext != nil {
		sv, ok := ext.resources[gvr]
		return sv, ok
	}
	return nil, false
}

// lookupKind returns the served resource of gvk, or nil.
func (s *Server) lookupKind(gvk schema.GroupVersionKind) *served {
	if sv := s.byKind[gvk]; sv != nil {
		return sv
	}
	if ext := s.ext.Load(); ext != nil {
		return ext.byKind[gvk]
	}
	return nil
}

// discoveryDocs returns the discovery documents of every served resource.
func (s *Server) discoveryDocs() *discoveryDocs {
	return s.disco.Load()
}

// Extend serves resources beside the built-in ones under key (a
// CustomResourceDefinition's name). A later call with the same key
// replaces them, and a call with none removes them; a store whose key
// prefix and kind are unchanged is kept, so that an update of a
// definition does not drop its watches. Every resource must be stored
// (not virtual nor in memory), and a resource that is StoredAs another
// must name one of the same call. A group/version/resource or kind
// served already, built in or under another key, is refused.
func (s *Server) Extend(key string, resources []*registry.Resource) error {
	s.extMu.Lock()
	defer s.extMu.Unlock()
	old := s.ext.Load()
	if old == nil {
		old = &extensions{}
	}
	next := &extensions{
		byKey:     map[string][]*served{},
		resources: map[schema.GroupVersionResource]*served{},
		byKind:    map[schema.GroupVersionKind]*served{},
		stores:    map[string]*extensionStore{},
	}
	for k, svs := range old.byKey {
		if k == key {
			continue
		}
		next.byKey[k] = svs
		for _, sv := range svs {
			next.resources[sv.res.GroupVersionResource()] = sv
			next.byKind[sv.res.GroupVersionKind()] = sv
			next.stores[sv.prefix] = old.stores[sv.prefix]
		}
	}
	var added []*served
	var created []*extensionStore
	fail := func(err error) error {
		for _, st := range created {
			st.stop()
		}
		return err
	}
	for _, res := range resources {
		if res == nil || res.StoredAs != nil {
			continue
		}
		if res.Create != nil || res.InMemory() {
			return fail(fmt.Errorf("%s: an extension resource must be stored", res.GroupVersionResource()))
		}
		if err := s.extensionConflict(next, res); err != nil {
			return fail(err)
		}
		prefix := StorageKeyPrefix(res.GroupVersionResource())
		st := old.stores[prefix]
		if _, taken := next.stores[prefix]; taken || st == nil || st.gvk != res.GroupVersionKind() || !ownedBy(old.byKey[key], prefix) {
			if taken {
				return fail(fmt.Errorf("%s: its storage prefix %s is in use", res.GroupVersionResource(), prefix))
			}
			if s.cfg.NewExtensionStorage == nil {
				return fail(fmt.Errorf("%s: this server adds no resources while it runs", res.GroupVersionResource()))
			}
			store, stop, err := s.cfg.NewExtensionStorage(storage.Config{
				Prefix:      prefix,
				GVK:         res.GroupVersionKind(),
				NewFunc:     res.New,
				NewListFunc: res.NewList,
				JSON:        res.JSONOnly,
			})
			if err != nil {
				return fail(fmt.Errorf("storage for %s: %w", res.GroupVersionResource(), err))
			}
			st = &extensionStore{store: store, gvk: res.GroupVersionKind(), stop: stop}
			created = append(created, st)
		}
		next.stores[prefix] = st
		sv := &served{res: res, store: st.store, prefix: prefix, stored: res}
		next.resources[res.GroupVersionResource()] = sv
		next.byKind[res.GroupVersionKind()] = sv
		added = append(added, sv)
	}
	for _, res := range resources {
		if res == nil || res.StoredAs == nil {
			continue
		}
		if err := s.extensionConflict(next, res); err != nil {
			return fail(err)
		}
		target := next.resources[*res.StoredAs]
		if target == nil || !slices.Contains(added, target) {
			return fail(fmt.Errorf("%s is stored as %s, which it does not serve", res.GroupVersionResource(), res.StoredAs))
		}
		sv := &served{res: res, store: target.store, prefix: target.prefix, stored: target.res}
		next.resources[res.GroupVersionResource()] = sv
		next.byKind[res.GroupVersionKind()] = sv
		added = append(added, sv)
	}
	if err := s.extensionFieldManagers(added); err != nil {
		return fail(err)
	}
	if len(added) > 0 {
		next.byKey[key] = added
	}
	s.ext.Store(next)
	s.rebuildDiscovery()
	for _, f := range s.onExtend {
		f()
	}
	for prefix, st := range old.stores {
		if next.stores[prefix] != st {
			st.stop()
		}
	}
	return nil
}

// ownedBy reports whether one of svs lives under prefix.
func ownedBy(svs []*served, prefix string) bool {
	for _, sv := range svs {
		if sv.prefix == prefix {
			return true
		}
	}
	return false
}

// extensionConflict refuses a resource whose group/version/resource or
// kind is served already.
func (s *Server) extensionConflict(next *extensions, res *registry.Resource) error {
	gvr, gvk := res.GroupVersionResource(), res.GroupVersionKind()
	if s.resources[gvr] != nil || next.resources[gvr] != nil {
		return fmt.Errorf("%s is served already", gvr)
	}
	if s.byKind[gvk] != nil || next.byKind[gvk] != nil {
		return fmt.Errorf("kind %s is served already", gvk)
	}
	return nil
}

// extensionFieldManagers gives each added resource its field managers,
// whose type converter reads the resources' OpenAPI schemas (list-map
// keys and list and map types of a custom resource's schema), as
// upstream's does.
func (s *Server) extensionFieldManagers(added []*served) error {
	if len(added) == 0 {
		return nil
	}
	byGVR := make(map[schema.GroupVersionResource]*served, len(added))
	for _, sv := range added {
		byGVR[sv.res.GroupVersionResource()] = sv
	}
	tc, err := managedfields.NewTypeConverter(openapi.Definitions(openAPIResourcesOf(byGVR)), false)
	if err != nil {
		return fmt.Errorf("server-side apply type converter of %s: %w", added[0].res.GroupVersionResource().GroupResource(), err)
	}
	for _, sv := range added {
		if sv.fields, err = s.newFieldManagers(tc, sv); err != nil {
			return err
		}
	}
	return nil
}

// servesUnstructured reports whether gvk's objects are unstructured (a
// custom resource's).
func (s *Server) servesUnstructured(gvk schema.GroupVersionKind) bool {
	sv := s.lookupKind(gvk)
	return sv != nil && sv.res.JSONOnly
}

// isUnstructured reports whether obj is an unstructured object (a custom
// resource's).
func isUnstructured(obj runtime.Object) bool {
	_, ok := obj.(*unstructured.Unstructured)
	return ok
}
