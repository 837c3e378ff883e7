package openapi

import (
	"slices"

	"k8s.io/kube-openapi/pkg/validation/spec"
)

// objectMetaDescription is the description of a custom resource's
// metadata field, upstream's (kubectl explain <crd>.metadata shows it).
const objectMetaDescription = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"

const extPreserveUnknown = "x-kubernetes-preserve-unknown-fields"

// preservesUnknown reports whether s keeps fields its schema does not
// list (x-kubernetes-preserve-unknown-fields: true).
func preservesUnknown(s *spec.Schema) bool {
	v, ok := s.Extensions[extPreserveUnknown].(bool)
	return ok && v
}

// copySchema copies s deeply enough that toV2 may change the copy: every
// schema reachable through properties, items and additionalProperties is
// copied.
func copySchema(s spec.Schema) spec.Schema {
	if s.Properties != nil {
		props := make(map[string]spec.Schema, len(s.Properties))
		for k, v := range s.Properties {
			props[k] = copySchema(v)
		}
		s.Properties = props
	}
	if s.Items != nil {
		items := *s.Items
		if items.Schema != nil {
			c := copySchema(*items.Schema)
			items.Schema = &c
		}
		if items.Schemas != nil {
			items.Schemas = slices.Clone(items.Schemas)
			for i := range items.Schemas {
				items.Schemas[i] = copySchema(items.Schemas[i])
			}
		}
		s.Items = &items
	}
	if s.AdditionalProperties != nil {
		ap := *s.AdditionalProperties
		if ap.Schema != nil {
			c := copySchema(*ap.Schema)
			ap.Schema = &c
		}
		s.AdditionalProperties = &ap
	}
	s.Required = slices.Clone(s.Required)
	return s
}

// toV2 rewrites a custom resource's schema as upstream publishes it in
// OpenAPI v2, which kubectl's v2 readers must understand: no allOf, oneOf,
// anyOf or not; a nullable field is untyped (it may be null); a field that
// keeps unknown fields lists neither properties nor items and is not typed
// object; an array without items is untyped; a nullable field is not
// required.
func toV2(s *spec.Schema) {
	s.AllOf, s.OneOf, s.AnyOf, s.Not = nil, nil, nil, nil
	if s.Nullable {
		s.Type, s.Nullable = nil, false
		s.Items, s.Properties = nil, nil
	}
	preserve := preservesUnknown(s)
	if preserve {
		s.Items, s.Properties = nil, nil
	}
	if s.Items == nil && s.Type.Contains("array") {
		s.Type = nil
	}
	if preserve && s.Type.Contains("object") {
		s.Type = nil
	}
	for name, p := range s.Properties {
		if p.Nullable {
			s.Required = slices.DeleteFunc(s.Required, func(r string) bool { return r == name })
		}
	}
	if ap := s.AdditionalProperties; ap != nil && ap.Schema != nil && ap.Schema.Nullable {
		s.Required = nil
	}
	for name, p := range s.Properties {
		toV2(&p)
		s.Properties[name] = p
	}
	if s.Items != nil {
		if s.Items.Schema != nil {
			toV2(s.Items.Schema)
		}
		for i := range s.Items.Schemas {
			toV2(&s.Items.Schemas[i])
		}
	}
	if ap := s.AdditionalProperties; ap != nil && ap.Schema != nil {
		toV2(ap.Schema)
	}
}
