package apiserver

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/kube-openapi/pkg/schemaconv"
	"k8s.io/kube-openapi/pkg/validation/spec"
	smdschema "sigs.k8s.io/structured-merge-diff/v6/schema"
	"sigs.k8s.io/structured-merge-diff/v6/typed"
	"sigs.k8s.io/structured-merge-diff/v6/value"
)

// typedConverter is managedfields' type converter for our definitions with
// one shortcut on the hot path of every write. When the FieldManager turns
// the written or the stored object, a Go API type, into a typed value, it
// asks with typed.AllowDuplicates, and the library then walks the whole
// object to validate it against its schema before any field is compared.
// That walk only checks, it changes nothing, and a Go object of the very
// type the schema was generated from conforms to it (duplicate list keys,
// the one thing it could find, are allowed by that option). So such
// objects become typed values without the walk: the same values, for
// about a sixth of the API server's CPU per create. Everything else
// (applied configurations, which are unstructured, and every call without
// AllowDuplicates) goes through the library unchanged, errors included.
type typedConverter struct {
	managedfields.TypeConverter
	types map[schema.GroupVersionKind]typed.ParseableType
}

func newTypedConverter(defs map[string]*spec.Schema) (*typedConverter, error) {
	lib, err := managedfields.NewTypeConverter(defs, false)
	if err != nil {
		return nil, err
	}
	s, err := schemaconv.ToSchemaFromOpenAPI(defs, false)
	if err != nil {
		return nil, err
	}
	parser := &typed.Parser{Schema: smdschema.Schema{Types: s.Types}}
	c := &typedConverter{TypeConverter: lib, types: map[schema.GroupVersionKind]typed.ParseableType{}}
	for name, def := range defs {
		list, _ := def.Extensions["x-kubernetes-group-version-kind"].([]any)
		for _, e := range list {
			m, _ := e.(map[string]any)
			g, _ := m["group"].(string)
			v, _ := m["version"].(string)
			k, _ := m["kind"].(string)
			if k != "" {
				c.types[schema.GroupVersionKind{Group: g, Version: v, Kind: k}] = parser.Type(name)
			}
		}
	}
	return c, nil
}

func (c *typedConverter) ObjectToTyped(obj runtime.Object, opts ...typed.ValidationOptions) (*typed.TypedValue, error) {
	if _, unstructured := obj.(runtime.Unstructured); unstructured || !slices.Contains(opts, typed.AllowDuplicates) {
		return c.TypeConverter.ObjectToTyped(obj, opts...)
	}
	t, ok := c.types[obj.GetObjectKind().GroupVersionKind()]
	if !ok {
		return c.TypeConverter.ObjectToTyped(obj, opts...)
	}
	v, err := value.NewValueReflect(obj)
	if err != nil {
		return nil, fmt.Errorf("typed value of %T: %w", obj, err)
	}
	return typed.AsTypedUnvalidated(v, t.Schema, t.TypeRef), nil
}
