package customresource

import (
	"context"
	"fmt"
	"math"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/model"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/common"
)

// The Validate funcs follow upstream's custom resource strategy step by
// step. Metadata proper (name, namespace, labels, ...) is checked by the
// server; here only that it decodes as ObjectMeta at all.
//
// The registry's Validate funcs take no context: the library's calls get
// context.Background(), and CEL's work is bounded by upstream's cost
// budgets instead (celconfig.PerCallLimit per expression, set when the
// rules are compiled, and celconfig.RuntimeCELCostBudget per object).

// validate checks a new object: apiVersion and kind first, alone, then
// metadata decoding, the OpenAPI schema, the scale paths, embedded
// resources, list sets and maps, and the CEL rules.
func (v *version) validate(obj runtime.Object) field.ErrorList {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return notUnstructured(obj)
	}
	if errs := v.validateTypeMeta(u); len(errs) > 0 {
		return errs
	}
	ctx := context.Background()
	content := contentOf(u)
	var errs field.ErrorList
	errs = append(errs, validateObjectMeta(content)...)
	errs = append(errs, validation.ValidateCustomResource(nil, content, v.schema.validator)...)
	errs = append(errs, v.validateScaleSpec(content)...)
	errs = append(errs, v.validateScaleStatus(content)...)
	errs = append(errs, schemaobjectmeta.Validate(ctx, nil, content, v.schema.structural, false)...)
	errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, v.schema.structural, content)...)
	errs = append(errs, v.validateRules(ctx, errs, content, nil)...)
	return errs
}

// validateUpdate checks a write to the main resource as validate does,
// with old for transition rules and ratcheting.
func (v *version) validateUpdate(obj, old runtime.Object) field.ErrorList {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return notUnstructured(obj)
	}
	o, ok := old.(*unstructured.Unstructured)
	if !ok {
		return notUnstructured(old)
	}
	if errs := v.validateTypeMeta(u); len(errs) > 0 {
		return errs
	}
	ctx := context.Background()
	content, oldContent := contentOf(u), contentOf(o)
	correlated := v.correlate(content, oldContent)
	var schemaOpts []validation.ValidationOption
	var celOpts []cel.Option
	if correlated != nil {
		schemaOpts = append(schemaOpts, validation.WithRatcheting(correlated))
		celOpts = append(celOpts, cel.WithRatcheting(correlated))
	}
	var errs field.ErrorList
	errs = append(errs, validateObjectMeta(content)...)
	errs = append(errs, validation.ValidateCustomResourceUpdate(nil, content, oldContent, v.schema.validator, schemaOpts...)...)
	errs = append(errs, v.validateScaleSpec(content)...)
	errs = append(errs, v.validateScaleStatus(content)...)
	// Embedded resources are checked as on create.
	errs = append(errs, schemaobjectmeta.Validate(ctx, nil, content, v.schema.structural, false)...)
	// List sets and maps ratchet: an object stored with duplicates may
	// keep them.
	if len(structurallisttype.ValidateListSetsAndMaps(nil, v.schema.structural, oldContent)) == 0 {
		errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, v.schema.structural, content)...)
	}
	errs = append(errs, v.validateRules(ctx, errs, content, oldContent, celOpts...)...)
	return errs
}

// validateStatusUpdate checks a write to /status: status by the status
// schema (paths rooted at "status"), the scale status paths, and the CEL
// rules of the whole object.
func (v *version) validateStatusUpdate(obj, old runtime.Object) field.ErrorList {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return notUnstructured(obj)
	}
	o, ok := old.(*unstructured.Unstructured)
	if !ok {
		return notUnstructured(old)
	}
	if errs := v.validateTypeMeta(u); len(errs) > 0 {
		return errs
	}
	ctx := context.Background()
	content, oldContent := contentOf(u), contentOf(o)
	correlated := v.correlate(content, oldContent)
	var schemaOpts []validation.ValidationOption
	var celOpts []cel.Option
	if correlated != nil {
		schemaOpts = append(schemaOpts, validation.WithRatcheting(correlated.Key("status")))
		celOpts = append(celOpts, cel.WithRatcheting(correlated))
	}
	var errs field.ErrorList
	errs = append(errs, validateObjectMeta(content)...)
	if status, ok := content["status"]; ok && v.schema.statusValidator != nil {
		errs = append(errs, validation.ValidateCustomResourceUpdate(field.NewPath("status"), status, oldContent["status"], v.schema.statusValidator, schemaOpts...)...)
	}
	errs = append(errs, v.validateScaleStatus(content)...)
	// Everything but status is old's, so this finds only the embedded
	// resources of status; upstream refuses those while decoding.
	errs = append(errs, schemaobjectmeta.Validate(ctx, nil, content, v.schema.structural, false)...)
	if newErrs := structurallisttype.ValidateListSetsAndMaps(nil, v.schema.structural, content); len(newErrs) > 0 {
		if len(structurallisttype.ValidateListSetsAndMaps(nil, v.schema.structural, oldContent)) == 0 {
			errs = append(errs, newErrs...)
		}
	}
	errs = append(errs, v.validateRules(ctx, errs, content, oldContent, celOpts...)...)
	return errs
}

// correlate pairs obj with old for ratcheting: errors in what an update
// leaves unchanged are not reported. Nil without a structural schema.
func (v *version) correlate(obj, old map[string]interface{}) *common.CorrelatedObject {
	if v.schema.structural == nil {
		return nil
	}
	return common.NewCorrelatedObject(obj, old, &model.Structural{Structural: v.schema.structural})
}

// validateRules runs the CEL rules on obj (with old for transition rules,
// nil on create), unless errs already holds an error that upstream deems
// blocking: then it says that the rules were not checked.
func (v *version) validateRules(ctx context.Context, errs field.ErrorList, obj, old map[string]interface{}, opts ...cel.Option) field.ErrorList {
	if v.schema.cel == nil {
		return nil
	}
	for _, err := range errs {
		switch err.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong, field.ErrorTypeTooMany, field.ErrorTypeTypeInvalid:
			return field.ErrorList{field.Invalid(nil, nil, "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation")}
		}
	}
	var oldObj interface{}
	if old != nil {
		oldObj = old
	}
	out, _ := v.schema.cel.Validate(ctx, nil, v.schema.structural, obj, oldObj, celconfig.RuntimeCELCostBudget, opts...)
	return out
}

// validateTypeMeta checks that obj's apiVersion and kind are this
// version's.
func (v *version) validateTypeMeta(u *unstructured.Unstructured) field.ErrorList {
	var errs field.ErrorList
	if kind := u.GetKind(); kind != v.gvk.Kind {
		errs = append(errs, field.Invalid(field.NewPath("kind"), kind, fmt.Sprintf("must be %v", v.gvk.Kind)))
	}
	want := v.gvk.Group + "/" + v.gvk.Version
	if apiVersion := u.GetAPIVersion(); apiVersion != want {
		errs = append(errs, field.Invalid(field.NewPath("apiVersion"), apiVersion, fmt.Sprintf("must be %v", want)))
	}
	return errs
}

// validateObjectMeta refuses metadata that does not decode as ObjectMeta,
// with upstream's messages.
func validateObjectMeta(obj map[string]interface{}) field.ErrorList {
	raw := obj["metadata"]
	if raw == nil {
		return nil
	}
	m, ok := raw.(map[string]interface{})
	if !ok {
		return field.ErrorList{field.Invalid(field.NewPath("metadata"), raw, fmt.Sprintf("expected map[string]interface{}, got %T", raw))}
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &metav1.ObjectMeta{}); err != nil {
		return field.ErrorList{field.Invalid(field.NewPath("metadata"), raw, err.Error())}
	}
	return nil
}

// validateScaleSpec checks the replicas at the scale subresource's spec
// path: an integer in [0, MaxInt32], or absent.
func (v *version) validateScaleSpec(obj map[string]interface{}) field.ErrorList {
	if v.scale == nil {
		return nil
	}
	return validateReplicas(obj, v.scale.SpecReplicasPath)
}

// validateScaleStatus checks the replicas at the scale subresource's
// status path, and that its label selector path holds a string.
func (v *version) validateScaleStatus(obj map[string]interface{}) field.ErrorList {
	if v.scale == nil {
		return nil
	}
	errs := validateReplicas(obj, v.scale.StatusReplicasPath)
	if v.scale.LabelSelectorPath != nil {
		sel, _, err := unstructured.NestedString(obj, splitPath(*v.scale.LabelSelectorPath)...)
		if err != nil {
			errs = append(errs, field.Invalid(field.NewPath(*v.scale.LabelSelectorPath), sel, err.Error()))
		}
	}
	return errs
}

// validateReplicas checks a replicas path with upstream's messages; the
// field path is the JSON path as written in the CRD (".spec.replicas"),
// as upstream reports it.
func validateReplicas(obj map[string]interface{}, path string) field.ErrorList {
	n, _, err := unstructured.NestedInt64(obj, splitPath(path)...)
	switch {
	case err != nil:
		return field.ErrorList{field.Invalid(field.NewPath(path), n, err.Error())}
	case n < 0:
		return field.ErrorList{field.Invalid(field.NewPath(path), n, "should be a non-negative integer")}
	case n > math.MaxInt32:
		return field.ErrorList{field.Invalid(field.NewPath(path), n, fmt.Sprintf("should be less than or equal to %v", math.MaxInt32))}
	}
	return nil
}

// splitPath splits a scale subresource path (".spec.replicas") into its
// fields.
func splitPath(path string) []string {
	return strings.Split(strings.TrimPrefix(path, "."), ".")
}

// contentOf returns u's content, an empty one when it has none. Unlike
// UnstructuredContent it leaves u as it is: old objects must not change.
func contentOf(u *unstructured.Unstructured) map[string]interface{} {
	if u.Object == nil {
		return map[string]interface{}{}
	}
	return u.Object
}

func notUnstructured(obj runtime.Object) field.ErrorList {
	return field.ErrorList{field.Invalid(field.NewPath(""), fmt.Sprintf("%T", obj), fmt.Sprintf("has type %T. Must be a pointer to an Unstructured type", obj))}
}
