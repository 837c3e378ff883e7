package apiserver

// managedFields: every create, update and patch (and the status and scale
// subresources' writes) records in metadata.managedFields which manager
// set which fields, with apimachinery's managedfields.FieldManager, as
// upstream's handlers do. Server-side apply (apply.go) merges by that
// ownership.
//
// The FieldManager needs a type converter (the structure of every served
// kind: list and map semantics, merge keys), built from our OpenAPI
// definitions once per server on the first write, and an object converter.
// skiff keeps no internal version: the served version is its own hub, and
// the converter only turns unstructured objects into typed ones and, for
// managedFields entries recorded in another served version of the same
// stored resource (autoscaling/v1 and v2, events in core/v1 and
// events.k8s.io/v1), converts through the stored form. Entries of
// versions that cannot be converted are dropped by the FieldManager, as
// upstream drops those of versions no longer served.

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/skiff-io/skiff/internal/openapi"
)

// fieldManagers holds a server's type converter and one FieldManager per
// served resource and subresource, all built once on first use.
type fieldManagers struct {
	once  sync.Once
	err   error
	tc    managedfields.TypeConverter
	byKey map[fieldManagerKey]*managedfields.FieldManager
}

type fieldManagerKey struct {
	gvr schema.GroupVersionResource
	sub string // "", "status", "scale" or a status-like subresource
}

// fieldOwner says for whom a write records managedFields.
type fieldOwner struct {
	// manager is the request's fieldManager, or else the prefix of its
	// User-Agent before the first "/", as upstream.
	manager string
	// sub is the subresource the write goes through ("", "status",
	// "scale", "finalize"): it picks the FieldManager and is recorded in
	// the manager's entry.
	sub string
	// applied is set when a server-side apply already computed the
	// object's managedFields: they are kept as they are.
	applied bool
}

// typeConverter returns the server's type converter, built on first use.
func (s *Server) typeConverter() (managedfields.TypeConverter, error) {
	s.buildFieldManagers()
	return s.fields.tc, s.fields.err
}

// fieldManager returns the FieldManager of a resource's subresource, or
// nil when writes there record no managedFields (finalize, virtual
// resources).
func (s *Server) fieldManager(sv *served, sub string) (*managedfields.FieldManager, error) {
	if sv.fields != nil {
		return sv.fields[sub], nil
	}
	s.buildFieldManagers()
	if s.fields.err != nil {
		return nil, s.fields.err
	}
	return s.fields.byKey[fieldManagerKey{gvr: sv.res.GroupVersionResource(), sub: sub}], nil
}

func (s *Server) buildFieldManagers() {
	s.fields.once.Do(func() {
		defs := withListMapKeyDefaults(openapi.Definitions(s.openAPIResources()))
		tc, err := newTypedConverter(defs)
		if err != nil {
			s.fields.err = fmt.Errorf("server-side apply type converter: %w", err)
			return
		}
		s.fields.tc = tc
		s.fields.byKey = map[fieldManagerKey]*managedfields.FieldManager{}
		for gvr, sv := range s.resources {
			if sv.res.Create != nil || sv.res.InMemory() {
				continue // virtual or in memory: nothing is stored
			}
			fms, err := s.newFieldManagers(tc, sv)
			if err != nil {
				s.fields.err = err
				return
			}
			for sub, fm := range fms {
				s.fields.byKey[fieldManagerKey{gvr: gvr, sub: sub}] = fm
			}
		}
	})
}

// newFieldManagers returns the field managers of a stored resource, by
// subresource ("" for the main resource).
func (s *Server) newFieldManagers(tc managedfields.TypeConverter, sv *served) (map[string]*managedfields.FieldManager, error) {
	subs := []string{""}
	if sv.res.Status {
		subs = append(subs, "status")
	}
	if sv.res.Scale != nil {
		subs = append(subs, "scale")
	}
	for _, x := range sv.res.Subresources {
		subs = append(subs, x.Name)
	}
	conv := objectConverter{s: s}
	gvk := sv.res.GroupVersionKind()
	out := make(map[string]*managedfields.FieldManager, len(subs))
	for _, sub := range subs {
		fm, err := managedfields.NewDefaultFieldManager(tc, conv, conv, conv, gvk, gvk.GroupVersion(), sub, s.resetFields(sv, sub))
		if err != nil {
			return nil, fmt.Errorf("field manager for %s: %w", sv.res.GroupVersionResource(), err)
		}
		out[sub] = fm
	}
	return out, nil
}

// listMapKeyDefaults are the defaults upstream's OpenAPI publishes for
// the key fields of associative lists. Server-side apply needs them: a
// container port applied without a protocol must be the same list entry
// as the stored one, which defaulting gave protocol TCP. Our OpenAPI
// carries no defaults (docs/compatibility.md), so the type converter adds
// these two, the only ones k8s.io/api declares (+default on a
// +listMapKey field).
var listMapKeyDefaults = map[string]map[string]any{
	"io.k8s.api.core.v1.ContainerPort": {"protocol": "TCP"},
	"io.k8s.api.core.v1.ServicePort":   {"protocol": "TCP"},
}

// withListMapKeyDefaults returns defs with listMapKeyDefaults set, on
// copies of the schemas it changes.
func withListMapKeyDefaults(defs map[string]*spec.Schema) map[string]*spec.Schema {
	for name, fields := range listMapKeyDefaults {
		def, ok := defs[name]
		if !ok {
			continue
		}
		cp := *def
		cp.Properties = make(map[string]spec.Schema, len(def.Properties))
		for k, v := range def.Properties {
			if d, ok := fields[k]; ok {
				v.Default = d
			}
			cp.Properties[k] = v
		}
		defs[name] = &cp
	}
	return defs
}

// resetFields are the fields a write through sub cannot change, which the
// strategy resets (registry.DefaultPrepareForUpdate and
// DefaultPrepareForStatusUpdate): a manager does not come to own them by
// sending them. The main resource resets status when there is a status
// subresource; the status subresource everything but status and
// metadata, and the metadata's finalizers and owner references; a
// status-like subresource what its ResetFields list, or all but its
// OwnedFields.
func (s *Server) resetFields(sv *served, sub string) map[fieldpath.APIVersion]fieldpath.Filter {
	var set *fieldpath.Set
	switch sub {
	case "":
		if !sv.res.Status {
			return nil
		}
		set = fieldpath.NewSet(fieldpath.MakePathOrDie("status"))
	case "status":
		set = fieldpath.NewSet(
			fieldpath.MakePathOrDie("metadata", "finalizers"),
			fieldpath.MakePathOrDie("metadata", "ownerReferences"),
		)
		top := []string{"spec"} // a custom resource's, as upstream resets them
		if obj := sv.res.New(); !isUnstructured(obj) {
			top = topLevelFields(obj)
		}
		for _, name := range top {
			switch name {
			case "apiVersion", "kind", "metadata", "status":
				continue
			}
			set.Insert(fieldpath.MakePathOrDie(name))
		}
	default:
		x := sv.res.Subresource(sub)
		if x == nil {
			return nil
		}
		if len(x.OwnedFields) > 0 {
			return s.sameFilterForAllVersions(sv, ownedFieldsFilter(x.OwnedFields))
		}
		if len(x.ResetFields) == 0 {
			return nil
		}
		set = fieldpath.NewSet()
		for _, p := range x.ResetFields {
			parts := strings.Split(p, ".")
			path := make([]interface{}, len(parts))
			for i, part := range parts {
				path[i] = part
			}
			set.Insert(fieldpath.MakePathOrDie(path...))
		}
	}
	return s.sameFilterForAllVersions(sv, fieldpath.NewExcludeSetFilter(set))
}

// ownedFieldsFilter keeps only the fields under paths (registry's
// Subresource.OwnedFields). The matcher is built as one tree: the
// library's SetMatcher.Merge keeps two wildcard members apart, and its
// filter then follows only the first ("spec.containers.*.resources"
// would hide "spec.containers.*.resizePolicy").
func ownedFieldsFilter(paths []string) fieldpath.Filter {
	type node map[string]node
	root := node{}
	for _, p := range paths {
		n := root
		for _, part := range strings.Split(p, ".") {
			if n[part] == nil {
				n[part] = node{}
			}
			n = n[part]
		}
		n[""] = nil // a path ends here: all below it is kept
	}
	var matcher func(n node) *fieldpath.SetMatcher
	matcher = func(n node) *fieldpath.SetMatcher {
		if _, end := n[""]; end {
			return fieldpath.MatchAnySet()
		}
		members := make([]*fieldpath.SetMemberMatcher, 0, len(n))
		for part, child := range n {
			pm := fieldpath.MatchAnyPathElement()
			if part != "*" {
				name := part
				pm = fieldpath.PathElementMatcher{PathElement: fieldpath.PathElement{FieldName: &name}}
			}
			members = append(members, &fieldpath.SetMemberMatcher{Path: pm, Child: matcher(child)})
		}
		return fieldpath.NewSetMatcher(false, members...)
	}
	return fieldpath.NewIncludeMatcherFilter(matcher(root))
}

// sameFilterForAllVersions gives filter to sv's version and to every
// other version of the same stored resource.
func (s *Server) sameFilterForAllVersions(sv *served, filter fieldpath.Filter) map[fieldpath.APIVersion]fieldpath.Filter {
	out := map[fieldpath.APIVersion]fieldpath.Filter{}
	// Entries of every version of the same stored resource are compared
	// in their own version: each gets the filter.
	for _, other := range s.resources {
		if other.stored == sv.stored {
			out[fieldpath.APIVersion(other.res.GroupVersion.String())] = filter
		}
	}
	out[fieldpath.APIVersion(sv.res.GroupVersion.String())] = filter
	return out
}

// topLevelFields are the JSON names of a kind's top-level fields.
func topLevelFields(obj runtime.Object) []string {
	t := reflect.TypeOf(obj)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			continue
		}
		names = append(names, name)
	}
	return names
}

// trackFields records obj's changes against live in obj's managedFields.
// On failure it keeps live's managedFields, as upstream's UpdateNoErrors:
// bookkeeping never fails a write.
func (s *Server) trackFields(sv *served, owner fieldOwner, live, obj runtime.Object) runtime.Object {
	if owner.applied {
		return obj
	}
	fm, err := s.fieldManager(sv, owner.sub)
	if err != nil || fm == nil {
		if err != nil {
			s.log.Error("managedFields not recorded", "resource", sv.res.GroupVersionResource(), "err", err)
		}
		if m, err := meta.Accessor(obj); err == nil && m.GetManagedFields() == nil {
			if lm, err := meta.Accessor(live); err == nil {
				m.SetManagedFields(lm.GetManagedFields())
			}
		}
		return obj
	}
	gvk := sv.res.GroupVersionKind()
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	live.GetObjectKind().SetGroupVersionKind(gvk)
	return fm.UpdateNoErrors(live, obj, owner.manager)
}

// newOwner reads the fieldManager of a write request and validates it as
// upstream validates the options of kind optionsKind (CreateOptions,
// UpdateOptions, PatchOptions): 422 when it is too long or unprintable.
// Without one, the manager is the User-Agent's prefix.
func newOwner(r *http.Request, optionsKind, sub string) (fieldOwner, error) {
	name := r.URL.Query().Get("fieldManager")
	if errs := validation.ValidateFieldManager(name, fieldPathFieldManager); len(errs) > 0 {
		return fieldOwner{}, apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: optionsKind}, "", errs)
	}
	if name == "" {
		name = prefixFromUserAgent(r.UserAgent())
	}
	return fieldOwner{manager: name, sub: sub}, nil
}

// prefixFromUserAgent is the default manager name: the User-Agent up to
// its first "/", without unprintable characters, cut to the longest
// manager name allowed (kubectl's "kubectl/v1.32.4 (linux/amd64) ..."
// gives "kubectl").
func prefixFromUserAgent(ua string) string {
	ua, _, _ = strings.Cut(ua, "/")
	var b bytes.Buffer
	for _, r := range ua {
		if !unicode.IsPrint(r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > validation.FieldManagerMaxLength {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// objectConverter is the FieldManager's object converter, defaulter and
// creater over the served resources (see the top of this file).
type objectConverter struct{ s *Server }

var errNoConversion = errors.New("skiff converts objects only between versions of one stored resource")

func (c objectConverter) Convert(in, out, context any) error { return errNoConversion }

func (c objectConverter) ConvertFieldLabel(gvk schema.GroupVersionKind, label, value string) (string, string, error) {
	return "", "", errNoConversion
}

// ConvertToVersion returns in (made typed if it is unstructured) in the
// target version.
func (c objectConverter) ConvertToVersion(in runtime.Object, target runtime.GroupVersioner) (runtime.Object, error) {
	src := in.GetObjectKind().GroupVersionKind()
	var dst schema.GroupVersionKind
	if gv, ok := target.(schema.GroupVersion); ok {
		dst = gv.WithKind(src.Kind) // events change group, not kind
	} else if dst, ok = target.KindForGroupVersionKinds([]schema.GroupVersionKind{src}); !ok {
		return nil, runtime.NewNotRegisteredErrForTarget("skiff", reflect.TypeOf(in), target)
	}
	if u, ok := in.(runtime.Unstructured); ok && !c.s.servesUnstructured(src) {
		typed, err := c.New(src)
		if err != nil {
			return nil, err
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), typed); err != nil {
			return nil, fmt.Errorf("converting %s from unstructured: %w", src, err)
		}
		typed.GetObjectKind().SetGroupVersionKind(src)
		in = typed
	}
	if dst == src {
		return in, nil
	}
	from, to := c.s.lookupKind(src), c.s.lookupKind(dst)
	if from == nil || to == nil || from.stored != to.stored {
		return nil, runtime.NewNotRegisteredErrForKind("skiff", dst)
	}
	stored, err := from.toStored(in)
	if err != nil {
		return nil, err
	}
	return to.fromStored(stored)
}

// New returns an empty object of a served kind (or of any kind client-go
// knows), its kind set.
func (c objectConverter) New(gvk schema.GroupVersionKind) (runtime.Object, error) {
	var obj runtime.Object
	if sv := c.s.lookupKind(gvk); sv != nil {
		obj = sv.res.New()
	} else {
		var err error
		if obj, err = scheme.Scheme.New(gvk); err != nil {
			return nil, err
		}
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return obj, nil
}

// Default applies the served resource's defaults.
func (c objectConverter) Default(obj runtime.Object) {
	if sv := c.s.lookupKind(obj.GetObjectKind().GroupVersionKind()); sv != nil && sv.res.Strategy.Default != nil {
		sv.res.Strategy.Default(obj)
	}
}

var fieldPathFieldManager = field.NewPath("fieldManager")
