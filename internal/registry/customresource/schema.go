package customresource

import (
	"fmt"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
)

// versionSchema is one version's schema in the forms the library's
// algorithms take, built once when the descriptors are.
type versionSchema struct {
	// structural is the structural schema with its defaults pruned, nil
	// when the version has none.
	structural *structuralschema.Structural
	// prune is false when nothing is pruned: no schema, or the CRD's
	// spec.preserveUnknownFields.
	prune bool
	// validator checks the whole object, statusValidator (nil without a
	// status subresource or a status schema) the status on /status.
	validator       validation.SchemaValidator
	statusValidator validation.SchemaValidator
	// cel holds the compiled x-kubernetes-validations rules; nil when
	// there are none.
	cel *cel.Validator
	// hasDefaults is set when the structural schema has a default
	// anywhere: only then do reads from storage need defaulting.
	hasDefaults bool
}

// compileSchema builds the schema of version v of crd as upstream's
// handler does: the v1 schema converted to the internal one, a structural
// schema with pruned defaults, OpenAPI validators, and CEL programs
// limited to upstream's per-call cost.
func compileSchema(crd *apiextensionsv1.CustomResourceDefinition, v *apiextensionsv1.CustomResourceDefinitionVersion, status bool) (*versionSchema, error) {
	vs := &versionSchema{}
	var props *apiextensions.JSONSchemaProps
	if v.Schema != nil && v.Schema.OpenAPIV3Schema != nil {
		internal := &apiextensions.CustomResourceValidation{}
		if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(v.Schema, internal, nil); err != nil {
			return nil, fmt.Errorf("version %s: converting the schema: %w", v.Name, err)
		}
		props = internal.OpenAPIV3Schema
	}
	if props != nil {
		s, err := structuralschema.NewStructural(props)
		if err == nil && !crd.Spec.PreserveUnknownFields {
			// CRD validation refuses non-structural schemas in v1; a
			// CRD that got past it is not served, rather than pruned
			// by a schema that does not describe it.
			if errs := structuralschema.ValidateStructural(nil, s); len(errs) > 0 {
				err = errs.ToAggregate()
			}
		}
		switch {
		case err != nil && !crd.Spec.PreserveUnknownFields:
			return nil, fmt.Errorf("version %s: the schema is not structural: %w", v.Name, err)
		case err != nil:
			// Upstream serves a non-structural schema of a CRD that
			// preserves unknown fields: validation only.
		default:
			// The structural schema shares defaults with props: work
			// on a copy, as upstream does.
			s = s.DeepCopy()
			if !crd.Spec.PreserveUnknownFields {
				if err := structuraldefaulting.PruneDefaults(s); err != nil {
					return nil, fmt.Errorf("version %s: pruning the schema's defaults: %w", v.Name, err)
				}
			}
			vs.structural = s
			vs.prune = !crd.Spec.PreserveUnknownFields
			vs.hasDefaults = hasDefault(s)
		}
	}
	var err error
	if vs.validator, _, err = validation.NewSchemaValidator(props); err != nil {
		return nil, fmt.Errorf("version %s: building the schema validator: %w", v.Name, err)
	}
	if status && props != nil {
		if st, ok := props.Properties["status"]; ok {
			if vs.statusValidator, _, err = validation.NewSchemaValidator(&st); err != nil {
				return nil, fmt.Errorf("version %s: building the status schema validator: %w", v.Name, err)
			}
		}
	}
	if vs.structural != nil {
		vs.cel = cel.NewValidator(vs.structural, true, celconfig.PerCallLimit)
	}
	return vs, nil
}

// coerce is what upstream's decoder does to every custom resource after
// decoding it (and its converter after converting it): it normalises root
// metadata through ObjectMeta, prunes fields the schema does not know and
// the non-nullable nulls without a default, and coerces the ObjectMeta of
// embedded resources. It returns the paths of the unknown fields it
// dropped when track is set, in upstream's form and order: root metadata
// first ("metadata.foo"), then the pruned fields ("spec.foo",
// "spec.list[0].bar"), then the embedded metadata's.
//
// Root metadata that does not decode as ObjectMeta is left as it is, for
// Validate to refuse (see validateObjectMeta); upstream fails the decode.
func (vs *versionSchema) coerce(obj map[string]interface{}, track bool) []string {
	if obj == nil {
		return nil
	}
	var unknown []string
	objectMeta, found, metaUnknown, err := schemaobjectmeta.GetObjectMetaWithOptions(obj, schemaobjectmeta.ObjectMetaOptions{
		ReturnUnknownFieldPaths: track,
	})
	metaOK := err == nil && found
	if metaOK {
		unknown = append(unknown, metaUnknown...)
	}
	if vs.prune {
		unknown = append(unknown, structuralpruning.PruneWithOptions(obj, vs.structural, true, structuralschema.UnknownFieldPathOptions{
			TrackUnknownFieldPaths: track,
		})...)
		structuraldefaulting.PruneNonNullableNullsWithoutDefaults(obj, vs.structural)
	}
	// An error is about an embedded resource's apiVersion, kind or
	// metadata: Validate reports it (schemaobjectmeta.Validate), where
	// upstream fails the decode.
	_, embeddedUnknown := schemaobjectmeta.CoerceWithOptions(nil, obj, vs.structural, false, schemaobjectmeta.CoerceOptions{
		ReturnUnknownFieldPaths: track,
	})
	unknown = append(unknown, embeddedUnknown...)
	if metaOK {
		// Rewritten from the decoded ObjectMeta, this drops unknown
		// metadata fields. It fails only on what decoded just now.
		_ = schemaobjectmeta.SetObjectMeta(obj, objectMeta)
	}
	return unknown
}

// hasDefault reports whether s or any schema below it has a default.
func hasDefault(s *structuralschema.Structural) bool {
	if s == nil {
		return false
	}
	if s.Default.Object != nil {
		return true
	}
	for k := range s.Properties {
		p := s.Properties[k]
		if hasDefault(&p) {
			return true
		}
	}
	if s.AdditionalProperties != nil && hasDefault(s.AdditionalProperties.Structural) {
		return true
	}
	return hasDefault(s.Items)
}

// applyDefaults fills in the schema's defaults.
func (vs *versionSchema) applyDefaults(u *unstructured.Unstructured) {
	if u == nil || u.Object == nil || vs.structural == nil {
		return
	}
	structuraldefaulting.Default(u.Object, vs.structural)
}
