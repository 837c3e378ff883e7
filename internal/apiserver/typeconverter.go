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

// typedConverter is managedfields' type converter for our definitions
// (the same schema and type index as managedfields.NewTypeConverter) with
// one shortcut on the hot path of every write. When the FieldManager turns
// the written or the stored object, a Go API type, into a typed value, it
// asks with typed.AllowDuplicates, and the library then walks the whole
// object to validate it against its schema before any field is compared.
// That walk only checks, it changes nothing, and a Go object of the very
// type the schema was generated from conforms to it (duplicate list keys,
// the one thing it could find, are allowed by that option). So such
// objects become typed values without the walk: the same values, for
// about a quarter of the cost of recording a create. Unstructured objects
// (applied configurations) and calls without AllowDuplicates are
// validated as before.
type typedConverter struct {
	types map[schema.GroupVersionKind]typed.ParseableType
	// missing answers for kinds we have no type for: the library's
	// converter over no definitions, whose error the FieldManager
	// recognises (it drops managedFields entries of unknown versions).
	missing managedfields.TypeConverter
}

func newTypedConverter(defs map[string]*spec.Schema) (*typedConverter, error) {
	s, err := schemaconv.ToSchemaFromOpenAPI(defs, false)
	if err != nil {
		return nil, fmt.Errorf("failed to convert models to schema: %w", err)
	}
	missing, err := managedfields.NewTypeConverter(map[string]*spec.Schema{}, false)
	if err != nil {
		return nil, err
	}
	parser := &typed.Parser{Schema: smdschema.Schema{Types: s.Types}}
	c := &typedConverter{missing: missing, types: map[schema.GroupVersionKind]typed.ParseableType{}}
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
	t, ok := c.types[obj.GetObjectKind().GroupVersionKind()]
	if !ok {
		return c.missing.ObjectToTyped(obj, opts...)
	}
	if u, ok := obj.(runtime.Unstructured); ok {
		return t.FromUnstructured(u.UnstructuredContent(), opts...)
	}
	if !slices.Contains(opts, typed.AllowDuplicates) {
		return t.FromStructured(obj, opts...)
	}
	v, err := value.NewValueReflect(obj)
	if err != nil {
		return nil, fmt.Errorf("error creating struct value reflector: %w", err)
	}
	return typed.AsTypedUnvalidated(v, t.Schema, t.TypeRef), nil
}

// TypedToObject turns a typed value into an unstructured object, as the
// library's converter does.
func (c *typedConverter) TypedToObject(v *typed.TypedValue) (runtime.Object, error) {
	return c.missing.TypedToObject(v)
}
