package openapi

import (
	"reflect"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// Dialect is the OpenAPI version a set of schemas is written for. The two
// differ where upstream's differ: v2 references live under
// "#/definitions/" and carry their description beside the $ref; v3
// references live under "#/components/schemas/" and are wrapped in a
// one-element allOf when anything sits beside them, and v3 describes
// Quantity and IntOrString with oneOf.
type Dialect int

const (
	V2 Dialect = iota
	V3
)

func (d Dialect) refPrefix() string {
	if d == V3 {
		return "#/components/schemas/"
	}
	return "#/definitions/"
}

// Builder collects the schema definitions of Go types. It is not safe for
// concurrent use.
type Builder struct {
	dialect Dialect
	defs    map[string]*spec.Schema
	deps    map[string]map[string]bool // definition -> the definitions it references
	names   map[reflect.Type]string
	gvks    map[string][]schema.GroupVersionKind
}

// NewBuilder returns an empty Builder for the dialect.
func NewBuilder(d Dialect) *Builder {
	return &Builder{
		dialect: d,
		defs:    map[string]*spec.Schema{},
		deps:    map[string]map[string]bool{},
		names:   map[reflect.Type]string{},
		gvks:    map[string][]schema.GroupVersionKind{},
	}
}

// Add defines obj's type and every type reachable from it, and returns the
// name of obj's definition. obj is a value or a pointer to one. Each gvk
// given is added to the definition's x-kubernetes-group-version-kind.
func (b *Builder) Add(obj any, gvks ...schema.GroupVersionKind) string {
	t := reflect.TypeOf(obj)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name := b.defineType(t)
	for _, gvk := range gvks {
		if !containsGVK(b.gvks[name], gvk) {
			b.gvks[name] = append(b.gvks[name], gvk)
		}
	}
	return name
}

func containsGVK(list []schema.GroupVersionKind, gvk schema.GroupVersionKind) bool {
	for _, g := range list {
		if g == gvk {
			return true
		}
	}
	return false
}

// Definitions returns every definition added so far, by name, with
// x-kubernetes-group-version-kind set. The caller owns the map and its
// schemas. In the V3 dialect it is what managedfields.NewTypeConverter
// takes.
func (b *Builder) Definitions() map[string]*spec.Schema {
	out := make(map[string]*spec.Schema, len(b.defs))
	for name := range b.defs {
		out[name] = b.definition(name)
	}
	return out
}

// Closure returns the definitions named by roots and every definition
// they reference, directly or not.
func (b *Builder) Closure(roots ...string) map[string]*spec.Schema {
	out := map[string]*spec.Schema{}
	var visit func(string)
	visit = func(name string) {
		if _, seen := out[name]; seen || b.defs[name] == nil {
			return
		}
		out[name] = b.definition(name)
		for dep := range b.deps[name] {
			visit(dep)
		}
	}
	for _, r := range roots {
		visit(r)
	}
	return out
}

// definition returns a copy of the named definition with its GVK list.
func (b *Builder) definition(name string) *spec.Schema {
	s := *b.defs[name]
	if gvks := b.gvks[name]; len(gvks) > 0 {
		sorted := append([]schema.GroupVersionKind(nil), gvks...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].String() < sorted[j].String() })
		list := make([]any, 0, len(sorted))
		for _, g := range sorted {
			list = append(list, map[string]any{"group": g.Group, "version": g.Version, "kind": g.Kind})
		}
		ext := spec.Extensions{}
		for k, v := range s.Extensions {
			ext[k] = v
		}
		ext["x-kubernetes-group-version-kind"] = list
		s.Extensions = ext
	}
	return &s
}

// Ref returns a schema that references the named definition.
func (b *Builder) Ref(name string) spec.Schema {
	return spec.Schema{SchemaProps: spec.SchemaProps{Ref: spec.MustCreateRef(b.dialect.refPrefix() + name)}}
}

// The interfaces apimachinery's types with a custom JSON form implement
// to tell OpenAPI generators what that form is (Time, MicroTime, Duration,
// Quantity, IntOrString).
type (
	schemaTyper interface {
		OpenAPISchemaType() []string
		OpenAPISchemaFormat() string
	}
	oneOfTyper interface{ OpenAPIV3OneOfTypes() []string }
	modelNamer interface{ OpenAPIModelName() string }
	swaggerDoc interface{ SwaggerDoc() map[string]string }
)

func implements[I any](t reflect.Type) (I, bool) {
	if v, ok := reflect.Zero(t).Interface().(I); ok {
		return v, true
	}
	v, ok := reflect.New(t).Interface().(I)
	return v, ok
}

// modelName is the definition name upstream gives t: OpenAPIModelName()
// where the type has one (k8s.io/api and apimachinery generate it), else
// the package path with its domain reversed ("k8s.io/api/core/v1" ->
// "io.k8s.api.core.v1") and the type name.
func modelName(t reflect.Type) string {
	if n, ok := implements[modelNamer](t); ok {
		return n.OpenAPIModelName()
	}
	parts := strings.Split(t.PkgPath(), "/")
	domain := strings.Split(parts[0], ".")
	for i, j := 0, len(domain)-1; i < j; i, j = i+1, j-1 {
		domain[i], domain[j] = domain[j], domain[i]
	}
	return strings.Join(append(domain, parts[1:]...), ".") + "." + t.Name()
}

func typeKey(t reflect.Type) string { return t.PkgPath() + "." + t.Name() }

// hasDefinition reports whether t is described by a definition of its own
// (referenced with $ref) rather than inline.
func hasDefinition(t reflect.Type) bool {
	if t.Name() == "" {
		return false
	}
	if _, ok := implements[schemaTyper](t); ok {
		return true
	}
	return t.Kind() == reflect.Struct
}

// define adds a definition given whole, which references deps.
func (b *Builder) define(name string, s *spec.Schema, deps ...string) {
	b.defs[name] = s
	b.deps[name] = map[string]bool{}
	for _, d := range deps {
		b.deps[name][d] = true
	}
}

func (b *Builder) defineType(t reflect.Type) string {
	if name, ok := b.names[t]; ok {
		return name
	}
	name := modelName(t)
	b.names[t] = name
	s := &spec.Schema{}
	b.defs[name] = s // before building: a type may reach itself
	b.deps[name] = map[string]bool{}
	*s = b.build(t, name)
	return name
}

func (b *Builder) build(t reflect.Type, name string) spec.Schema {
	var s spec.Schema
	if d, ok := implements[swaggerDoc](t); ok {
		s.Description = d.SwaggerDoc()[""]
	} else {
		s.Description = generatedTypeDocs[typeKey(t)]
	}
	if typer, ok := implements[schemaTyper](t); ok {
		if oneOf, ok := implements[oneOfTyper](t); ok && b.dialect == V3 {
			for _, typ := range oneOf.OpenAPIV3OneOfTypes() {
				s.OneOf = append(s.OneOf, spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{typ}}})
			}
		} else {
			s.Type = typer.OpenAPISchemaType()
		}
		s.Format = typer.OpenAPISchemaFormat()
		return s
	}
	s.Type = spec.StringOrArray{"object"}
	if mt := generatedTypeMarkers[typeKey(t)]; mt != "" {
		s.Extensions = spec.Extensions{"x-kubernetes-map-type": mt}
	}
	b.fields(t, &s, name)
	return s
}

// fields adds the JSON properties of struct t to s, flattening embedded
// structs as encoding/json does.
func (b *Builder) fields(t reflect.Type, s *spec.Schema, owner string) {
	var docs map[string]string
	if d, ok := implements[swaggerDoc](t); ok {
		docs = d.SwaggerDoc()
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, hasTag := f.Tag.Lookup("json")
		name, opts, _ := strings.Cut(tag, ",")
		if tag == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && ft.Kind() == reflect.Struct && (name == "" || hasOpt(opts, "inline")) {
			b.fields(ft, s, owner)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if hasOpt(opts, "inline") && ft.Kind() == reflect.Struct {
			b.fields(ft, s, owner)
			continue
		}
		if name == "" || !hasTag {
			name = f.Name
		}
		m := markersOf(t.PkgPath(), t.Name(), f.Name)
		prop := b.schemaOf(f.Type, owner)
		desc := docs[name]
		if enum := generatedEnums[typeKey(ft)]; len(enum) > 0 && ft.Kind() == reflect.String {
			desc += enumDescription(enum)
		}
		prop = b.describe(prop, desc)
		ext := spec.Extensions{}
		if v := f.Tag.Get("patchStrategy"); v != "" {
			ext["x-kubernetes-patch-strategy"] = v
		}
		if v := f.Tag.Get("patchMergeKey"); v != "" {
			ext["x-kubernetes-patch-merge-key"] = v
		}
		if m.listType != "" {
			ext["x-kubernetes-list-type"] = m.listType
		}
		if len(m.listMapKeys) > 0 {
			keys := make([]any, len(m.listMapKeys))
			for i, k := range m.listMapKeys {
				keys[i] = k
			}
			ext["x-kubernetes-list-map-keys"] = keys
		}
		if m.mapType != "" {
			ext["x-kubernetes-map-type"] = m.mapType
		}
		if len(ext) > 0 {
			for k, v := range prop.Extensions {
				ext[k] = v
			}
			prop.Extensions = ext
		}
		if s.Properties == nil {
			s.Properties = map[string]spec.Schema{}
		}
		s.Properties[name] = prop
		omitted := hasOpt(opts, "omitempty") || hasOpt(opts, "omitzero")
		if m.required || (!omitted && !m.optional) {
			s.Required = append(s.Required, name)
		}
	}
}

func hasOpt(opts, opt string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// describe sets a property's description. A bare $ref may not carry
// siblings in v3: upstream wraps it in allOf, which clients (kubectl
// explain, strategic merge patch, schemaconv) all unwrap.
func (b *Builder) describe(prop spec.Schema, desc string) spec.Schema {
	if desc == "" {
		return prop
	}
	if b.dialect == V3 && prop.Ref.String() != "" {
		return spec.Schema{SchemaProps: spec.SchemaProps{Description: desc, AllOf: []spec.Schema{prop}}}
	}
	prop.Description = desc
	return prop
}

func enumDescription(vals []enumValue) string {
	lines := []string{"", "", "Possible enum values:"}
	for _, v := range vals {
		lines = append(lines, strings.TrimRight(" - `\""+v.value+"\"` "+v.comment, " "))
	}
	return strings.Join(lines, "\n")
}

// schemaOf is the schema of a value of type t where it appears: a
// reference for types with a definition, inline otherwise. owner is the
// definition being built, which comes to depend on what t references.
func (b *Builder) schemaOf(t reflect.Type, owner string) spec.Schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if hasDefinition(t) {
		name := b.defineType(t)
		b.deps[owner][name] = true
		return b.Ref(name)
	}
	typed := func(typ, format string) spec.Schema {
		return spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{typ}, Format: format}}
	}
	switch t.Kind() {
	case reflect.String:
		s := typed("string", "")
		for _, v := range generatedEnums[typeKey(t)] {
			s.Enum = append(s.Enum, v.value)
		}
		return s
	case reflect.Bool:
		return typed("boolean", "")
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint8, reflect.Uint16:
		return typed("integer", "int32")
	case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return typed("integer", "int64")
	case reflect.Float32:
		return typed("number", "float")
	case reflect.Float64:
		return typed("number", "double")
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return typed("string", "byte")
		}
		items := b.schemaOf(t.Elem(), owner)
		s := typed("array", "")
		s.Items = &spec.SchemaOrArray{Schema: &items}
		return s
	case reflect.Map:
		val := b.schemaOf(t.Elem(), owner)
		s := typed("object", "")
		s.AdditionalProperties = &spec.SchemaOrBool{Allows: true, Schema: &val}
		return s
	case reflect.Struct:
		// An anonymous struct: described inline.
		s := typed("object", "")
		b.fields(t, &s, owner)
		return s
	}
	// interface{} and anything else: any value.
	return spec.Schema{VendorExtensible: spec.VendorExtensible{Extensions: spec.Extensions{"x-kubernetes-preserve-unknown-fields": true}}}
}
