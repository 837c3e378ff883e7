package apiserver

import (
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
)

// serveVirtual serves a resource whose descriptor has a Create hook: only
// create, on the collection, and nothing is stored (registry.Resource.Create).
// Admission does not run: there is no object to admit into storage.
func (s *Server) serveVirtual(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	if info.sub != "" {
		return notFoundSub(info)
	}
	if info.verb != "create" || info.name != "" {
		return methodNotAllowed(info, r)
	}
	wr, obj, err := readServed(w, r, sv)
	if err != nil {
		return err
	}
	if wr.format.target != asObject {
		// A review is not an object of the API's metadata: no Table, no
		// PartialObjectMetadata (upstream: 406).
		return notAcceptable()
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	if sv.res.Namespaced {
		if m.GetNamespace() != "" && m.GetNamespace() != info.namespace {
			return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
		m.SetNamespace(info.namespace)
	}
	st := sv.res.Strategy
	if st.Default != nil {
		st.Default(obj)
	}
	if st.Validate != nil {
		if errs := st.Validate(obj); len(errs) > 0 {
			return apierrors.NewInvalid(sv.res.GroupVersionKind().GroupKind(), m.GetName(), errs)
		}
	}
	out, err := sv.res.Create(r.Context(), obj)
	if err != nil {
		return err
	}
	out.GetObjectKind().SetGroupVersionKind(sv.res.GroupVersionKind())
	return s.respond(w, r, http.StatusCreated, wr.format, sv, out)
}

// serveInMemory serves a resource whose descriptor has Get and List
// hooks (registry.Resource.InMemory): get and list of the main resource,
// nothing else. There is no resourceVersion to list at, and no watch.
func (s *Server) serveInMemory(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	if info.sub != "" {
		return notFoundSub(info)
	}
	format, ok := negotiateOutput(r)
	if !ok {
		return notAcceptable()
	}
	switch info.verb {
	case "get":
		obj, err := sv.res.Get(r.Context(), info.namespace, info.name)
		if err != nil {
			return err
		}
		obj.GetObjectKind().SetGroupVersionKind(sv.res.GroupVersionKind())
		return s.respond(w, r, http.StatusOK, format, sv, obj)
	case "list":
		_, opts, err := s.listOptions(r, info, sv)
		if err != nil {
			return err
		}
		items, err := sv.res.List(r.Context(), info.namespace, opts.Predicate.Label, opts.Predicate.Field)
		if err != nil {
			return err
		}
		for _, it := range items {
			it.GetObjectKind().SetGroupVersionKind(sv.res.GroupVersionKind())
		}
		switch format.target {
		case asTable:
			t, err := s.toTable(r, sv, items, nil)
			if err != nil {
				return err
			}
			writeObject(w, http.StatusOK, format, t)
			return nil
		case asPartialObjectMetadata, asPartialObjectMetadataList, asAPIGroupDiscoveryList:
			return notAcceptable()
		}
		list := sv.res.NewList()
		if err := meta.SetList(list, items); err != nil {
			return apierrors.NewInternalError(err)
		}
		list.GetObjectKind().SetGroupVersionKind(sv.res.GroupVersion.WithKind(sv.res.Kind + "List"))
		writeObject(w, http.StatusOK, format, list)
		return nil
	}
	return methodNotAllowed(info, r)
}
