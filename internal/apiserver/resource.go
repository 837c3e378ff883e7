package apiserver

import (
	"context"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/skiff-io/skiff/internal/storage"
)

// serveNotFound is upstream's 404 for a path that names nothing served:
// "the server could not find the requested resource".
func (s *Server) serveNotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, apierrors.NewGenericServerResponse(http.StatusNotFound, "", schema.GroupResource{}, "", "", 0, false))
}

// serveAPI serves everything under /api and /apis: discovery and the
// resources.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	info := requestInfoOf(r)
	if !info.isResource {
		if !s.serveDiscovery(w, r, info) {
			s.serveNotFound(w, r)
		}
		return
	}
	gvr := schema.GroupVersionResource{Group: info.group, Version: info.version, Resource: info.resource}
	sv, ok := s.lookup(gvr)
	if !ok || (!sv.res.Namespaced && info.namespace != "" && info.resource != "namespaces") {
		s.serveNotFound(w, r)
		return
	}
	if sv.res.Namespaced && info.namespace == "" && info.name != "" {
		s.serveNotFound(w, r)
		return
	}
	if sv.res.JSONOnly {
		r = withJSONOnly(r)
	}
	if sv.res.Warning != "" {
		addWarnings(w, []string{sv.res.Warning})
	}
	if sv.res.Create != nil {
		if err := s.serveVirtual(w, r, info, sv); err != nil {
			writeError(w, r, err)
		}
		return
	}
	if sv.res.InMemory() {
		if err := s.serveInMemory(w, r, info, sv); err != nil {
			writeError(w, r, err)
		}
		return
	}
	var err error
	switch info.sub {
	case "":
		err = s.serveMain(w, r, info, sv)
	case "status":
		if !sv.res.Status {
			err = notFoundSub(info)
			break
		}
		err = s.serveStatus(w, r, info, sv)
	case "scale":
		if sv.res.Scale == nil {
			err = notFoundSub(info)
			break
		}
		err = s.serveScale(w, r, info, sv)
	case "binding":
		if gvr != (schema.GroupVersionResource{Version: "v1", Resource: "pods"}) || info.verb != "create" {
			err = notFoundSub(info)
			break
		}
		err = s.serveBinding(w, r, info, sv)
	case "eviction":
		if gvr != (schema.GroupVersionResource{Version: "v1", Resource: "pods"}) || info.verb != "create" {
			err = notFoundSub(info)
			break
		}
		err = s.serveEviction(w, r, info, sv)
	case "token":
		if gvr != (schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}) || info.verb != "create" {
			err = notFoundSub(info)
			break
		}
		err = s.serveToken(w, r, info, sv)
	case "log", "exec", "attach", "portforward":
		if gvr != podsGVR {
			err = notFoundSub(info)
			break
		}
		if info.sub == "log" {
			err = s.serveLog(w, r, info, sv)
		} else {
			err = s.serveStream(w, r, info, sv)
		}
	case "proxy":
		switch gvr {
		case nodesGVR:
			err = s.serveNodeProxy(w, r, info)
		case podsGVR:
			err = s.servePodProxy(w, r, info, sv)
		case servicesGVR:
			err = s.serveServiceProxy(w, r, info, sv)
		default:
			err = notFoundSub(info)
		}
	case "finalize":
		if gvr != (schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}) || info.verb != "update" {
			err = notFoundSub(info)
			break
		}
		err = s.update(w, r, info, sv, "finalize")
	default:
		if sv.res.Subresource(info.sub) == nil {
			err = notFoundSub(info)
			break
		}
		err = s.serveStatus(w, r, info, sv)
	}
	if err != nil {
		writeError(w, r, err)
	}
}

func notFoundSub(info requestInfo) error {
	return apierrors.NewNotFound(schema.GroupResource{Group: info.group, Resource: info.resource + "/" + info.sub}, info.name)
}

func methodNotAllowed(info requestInfo, r *http.Request) error {
	return apierrors.NewMethodNotSupported(schema.GroupResource{Group: info.group, Resource: info.resource}, r.Method)
}

func (s *Server) serveMain(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	switch info.verb {
	case "get":
		return s.get(w, r, info, sv)
	case "list":
		return s.list(w, r, info, sv)
	case "watch":
		return s.watch(w, r, info, sv)
	case "create":
		if info.name != "" {
			return methodNotAllowed(info, r)
		}
		return s.create(w, r, info, sv)
	case "update":
		if info.name == "" {
			return methodNotAllowed(info, r)
		}
		return s.update(w, r, info, sv, "")
	case "patch":
		if info.name == "" {
			return methodNotAllowed(info, r)
		}
		return s.patch(w, r, info, sv, "")
	case "delete":
		return s.delete(w, r, info, sv)
	case "deletecollection":
		return s.deleteCollection(w, r, info, sv)
	}
	return methodNotAllowed(info, r)
}

// serveStatus serves the status subresource and the status-like ones a
// resource lists in Subresources (info.sub): GET of the whole object, and
// PUT and PATCH through the subresource's strategy.
func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	switch info.verb {
	case "get":
		return s.get(w, r, info, sv)
	case "update":
		return s.update(w, r, info, sv, info.sub)
	case "patch":
		return s.patch(w, r, info, sv, info.sub)
	}
	return methodNotAllowed(info, r)
}

// key is the storage key of one object.
func (sv *served) key(namespace, name string) string {
	if sv.stored.Namespaced {
		return sv.prefix + namespace + "/" + name
	}
	return sv.prefix + name
}

// listPrefix is the storage prefix of a namespace's objects, or of all.
func (sv *served) listPrefix(namespace string) string {
	if sv.stored.Namespaced && namespace != "" {
		return sv.prefix + namespace + "/"
	}
	return sv.prefix
}

func (sv *served) groupResource() schema.GroupResource {
	return schema.GroupResource{Group: sv.res.GroupVersion.Group, Resource: sv.res.Name}
}

// fromStored converts a stored object to the served version. Stored
// objects may be shared with the watch cache: the converters build new ones.
func (sv *served) fromStored(obj runtime.Object) (runtime.Object, error) {
	convert := sv.res.FromStored
	if sv.stored == sv.res {
		convert = sv.res.Read
	}
	if convert == nil {
		return obj, nil
	}
	out, err := convert(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("converting to %s: %w", sv.res.GroupVersionKind(), err))
	}
	if out != obj { // obj may be shared: it is not written to
		out.GetObjectKind().SetGroupVersionKind(sv.res.GroupVersionKind())
	}
	return out, nil
}

// toStored converts a served object to the stored version.
func (sv *served) toStored(obj runtime.Object) (runtime.Object, error) {
	if sv.res.ToStored == nil || sv.stored == sv.res {
		return obj, nil
	}
	out, err := sv.res.ToStored(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("converting to %s: %v", sv.stored.GroupVersionKind(), err))
	}
	out.GetObjectKind().SetGroupVersionKind(sv.stored.GroupVersionKind())
	return out, nil
}

// getAttrs returns the labels and field-selector set of a stored object,
// by the served version's field selectors when it has its own.
func (sv *served) getAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	fieldsOf, res := sv.stored.Fields, sv.stored
	if sv.stored != sv.res && sv.res.Fields != nil {
		served, err := sv.fromStored(obj)
		if err != nil {
			return nil, nil, err
		}
		obj, fieldsOf, res = served, sv.res.Fields, sv.res
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, err
	}
	var fs fields.Set
	if fieldsOf != nil {
		fs = fieldsOf(obj)
	} else {
		fs = fields.Set{"metadata.name": m.GetName()}
		if res.Namespaced {
			fs["metadata.namespace"] = m.GetNamespace()
		}
	}
	return labels.Set(m.GetLabels()), fs, nil
}

// knownFields are the field selectors a resource supports.
func (sv *served) knownFields() fields.Set {
	_, fs, err := sv.getAttrs(sv.stored.New())
	if err != nil {
		return fields.Set{}
	}
	return fs
}

// get serves GET of one object (or its status).
func (s *Server) get(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	format, ok := negotiateOutput(r)
	if !ok {
		return notAcceptable()
	}
	out := sv.stored.New()
	rv := r.URL.Query().Get("resourceVersion")
	if err := sv.store.Get(r.Context(), sv.key(info.namespace, info.name), rv, out); err != nil {
		return storageError(err, sv.groupResource(), info.name)
	}
	obj, err := sv.fromStored(out)
	if err != nil {
		return err
	}
	return s.respond(w, r, http.StatusOK, format, sv, obj)
}

func notAcceptable() error {
	return apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "get", schema.GroupResource{}, "",
		"only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf", 0, false)
}

// respond writes one object in the negotiated representation.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, code int, format outputFormat, sv *served, obj runtime.Object) error {
	switch format.target {
	case asTable:
		t, err := s.toTable(r, sv, []runtime.Object{obj}, nil)
		if err != nil {
			return err
		}
		obj = t
	case asPartialObjectMetadata:
		obj = partialMetadata(obj)
	case asPartialObjectMetadataList, asAPIGroupDiscoveryList:
		return notAcceptable()
	}
	writeObject(w, code, format, obj)
	return nil
}

// partialMetadata is the metadata-only form of an object.
func partialMetadata(obj runtime.Object) *metav1.PartialObjectMetadata {
	m, err := meta.Accessor(obj)
	if err != nil {
		return &metav1.PartialObjectMetadata{}
	}
	p := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}}
	p.ObjectMeta = metav1.ObjectMeta{
		Name: m.GetName(), GenerateName: m.GetGenerateName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
		ResourceVersion: m.GetResourceVersion(), Generation: m.GetGeneration(), CreationTimestamp: m.GetCreationTimestamp(),
		DeletionTimestamp: m.GetDeletionTimestamp(), DeletionGracePeriodSeconds: m.GetDeletionGracePeriodSeconds(),
		Labels: m.GetLabels(), Annotations: m.GetAnnotations(), OwnerReferences: m.GetOwnerReferences(),
		Finalizers: m.GetFinalizers(), ManagedFields: m.GetManagedFields(),
	}
	return p
}

// listOptions parses a list or watch request's query.
func (s *Server) listOptions(r *http.Request, info requestInfo, sv *served) (metav1.ListOptions, storage.ListOptions, error) {
	var opts metav1.ListOptions
	if err := scheme.ParameterCodec.DecodeParameters(r.URL.Query(), coreV1, &opts); err != nil {
		return opts, storage.ListOptions{}, apierrors.NewBadRequest(err.Error())
	}
	label := labels.Everything()
	if opts.LabelSelector != "" {
		sel, err := labels.Parse(opts.LabelSelector)
		if err != nil {
			return opts, storage.ListOptions{}, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
		}
		label = sel
	}
	field := fields.Everything()
	if opts.FieldSelector != "" {
		sel, err := fields.ParseSelector(opts.FieldSelector)
		if err != nil {
			return opts, storage.ListOptions{}, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector: %v", err))
		}
		known := sv.knownFields()
		for _, req := range sel.Requirements() {
			if _, ok := known[req.Field]; !ok {
				return opts, storage.ListOptions{}, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
			}
		}
		field = sel
	}
	if info.name != "" { // deprecated /watch/.../name paths
		field = fields.AndSelectors(field, fields.OneTermEqualSelector("metadata.name", info.name))
	}
	switch opts.ResourceVersionMatch {
	case "", metav1.ResourceVersionMatchExact, metav1.ResourceVersionMatchNotOlderThan:
	default:
		return opts, storage.ListOptions{}, apierrors.NewBadRequest(fmt.Sprintf("resourceVersionMatch: unsupported value %q", opts.ResourceVersionMatch))
	}
	if opts.ResourceVersionMatch != "" && opts.ResourceVersion == "" {
		return opts, storage.ListOptions{}, apierrors.NewBadRequest("resourceVersionMatch is forbidden unless resourceVersion is provided")
	}
	if opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact && opts.ResourceVersion == "0" {
		return opts, storage.ListOptions{}, apierrors.NewBadRequest("resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"")
	}
	if opts.Continue != "" && opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
		return opts, storage.ListOptions{}, apierrors.NewBadRequest("specifying resource version is not allowed when using continue")
	}
	if opts.Limit < 0 {
		return opts, storage.ListOptions{}, apierrors.NewBadRequest("limit must not be negative")
	}
	return opts, storage.ListOptions{
		ResourceVersion:      opts.ResourceVersion,
		ResourceVersionMatch: opts.ResourceVersionMatch,
		Predicate:            storage.Predicate{Label: label, Field: field, GetAttrs: sv.getAttrs},
		Limit:                opts.Limit,
		Continue:             opts.Continue,
		AllowWatchBookmarks:  opts.AllowWatchBookmarks,
		SendInitialEvents:    opts.SendInitialEvents,
	}, nil
}

// list serves a LIST.
func (s *Server) list(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	format, ok := negotiateOutput(r)
	if !ok {
		return notAcceptable()
	}
	_, opts, err := s.listOptions(r, info, sv)
	if err != nil {
		return err
	}
	listObj, items, err := s.readList(r.Context(), info.namespace, sv, opts)
	if err != nil {
		return err
	}
	var out runtime.Object = listObj
	switch format.target {
	case asTable:
		lm, _ := meta.ListAccessor(listObj)
		t, err := s.toTable(r, sv, items, lm)
		if err != nil {
			return err
		}
		out = t
	case asPartialObjectMetadataList:
		pl := &metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadataList"}}
		if lm, err := meta.ListAccessor(listObj); err == nil {
			pl.ResourceVersion, pl.Continue, pl.RemainingItemCount = lm.GetResourceVersion(), lm.GetContinue(), lm.GetRemainingItemCount()
		}
		for _, it := range items {
			pl.Items = append(pl.Items, *partialMetadata(it))
		}
		out = pl
	case asPartialObjectMetadata, asAPIGroupDiscoveryList:
		return notAcceptable()
	}
	writeObject(w, http.StatusOK, format, out)
	return nil
}

// readList lists from storage and returns the served list and its items.
func (s *Server) readList(ctx context.Context, namespace string, sv *served, opts storage.ListOptions) (runtime.Object, []runtime.Object, error) {
	stored := sv.stored.NewList()
	if err := sv.store.List(ctx, sv.listPrefix(namespace), opts, stored); err != nil {
		return nil, nil, storageError(err, sv.groupResource(), "")
	}
	items, err := meta.ExtractList(stored)
	if err != nil {
		return nil, nil, apierrors.NewInternalError(err)
	}
	listObj := stored
	if sv.stored != sv.res || sv.res.Read != nil {
		listObj = sv.res.NewList()
		for i, it := range items {
			if items[i], err = sv.fromStored(it); err != nil {
				return nil, nil, err
			}
		}
		if err := meta.SetList(listObj, items); err != nil {
			return nil, nil, apierrors.NewInternalError(err)
		}
		src, _ := meta.ListAccessor(stored)
		dst, _ := meta.ListAccessor(listObj)
		dst.SetResourceVersion(src.GetResourceVersion())
		dst.SetContinue(src.GetContinue())
		dst.SetRemainingItemCount(src.GetRemainingItemCount())
	}
	listObj.GetObjectKind().SetGroupVersionKind(sv.res.GroupVersion.WithKind(sv.res.Kind + "List"))
	return listObj, items, nil
}
