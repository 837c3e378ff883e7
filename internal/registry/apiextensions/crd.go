// Package apiextensions is the registry of the apiextensions.k8s.io/v1 API
// group: CustomResourceDefinitions, with upstream's defaulting, strategy,
// validation, deletion finalizer and `kubectl get crd` columns. Serving
// the custom resources a CRD defines is the server's and the CRD
// controller's work, not this package's.
//
// The object handled is the v1 type of k8s.io/apiextensions-apiserver, as
// for every other group (skiff has no internal version). Validation is the
// library's own (ARCHITECTURE.md rule 4): each object is converted to the
// library's internal form and checked by its validation package, so
// messages and field paths are upstream's to the letter. That includes an
// upstream quirk: when every version carries the same schema (any
// single-version CRD), conversion lifts it to the internal top-level
// field, and schema errors read "spec.validation.openAPIV3Schema..."
// rather than "spec.versions[0].schema.openAPIV3Schema...", as they do
// from a kube-apiserver.
//
// Upstream keeps CRDs in its internal form and writes them back as v1, so
// every response carries the object as that round trip leaves it:
// `default`, `enum` and `example` values re-encoded (compact JSON, sorted
// keys, whole numbers without a fraction), a conversion webhook with
// neither clientConfig nor conversionReviewVersions dropped. Default does
// the same round trip, so objects read back from skiff match.
//
// Deleting a CRD is two-step, as upstream: the first DELETE only marks it
// (deletionTimestamp, the customresourcecleanup.apiextensions.k8s.io
// finalizer, a Terminating=True condition); the CRD controller then deletes
// the custom resources and removes the finalizer, through /status as
// upstream's controller does — a status write keeps the spec but takes
// metadata from the write, upstream's behaviour (kubernetes#137681).
//
// Not reproduced: upstream's create and update warnings (unrecognized
// schema formats, list-type set of non-scalar items), since the server
// sends no strategy warnings yet; and its dropping of fields behind
// disabled feature gates, since the three gates involved are on by default
// in 1.37 and skiff has no --feature-gates.
package apiextensions

import (
	"context"
	"fmt"

	"k8s.io/apiextensions-apiserver/pkg/apihelpers"
	crdinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metavalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/skiff-io/skiff/internal/registry"
)

// init registers the v1 types (and their defaulting) in client-go's
// scheme, which the server's storage and HTTP codecs use; client-go does
// not carry apiextensions.k8s.io.
func init() {
	if !scheme.Scheme.IsVersionRegistered(apiextensionsv1.SchemeGroupVersion) {
		utilruntime.Must(apiextensionsv1.AddToScheme(scheme.Scheme))
	}
}

// Resources returns the descriptor of customresourcedefinitions.
func Resources() []*registry.Resource {
	return []*registry.Resource{{
		GroupVersion: apiextensionsv1.SchemeGroupVersion,
		Name:         "customresourcedefinitions",
		Singular:     "customresourcedefinition",
		Kind:         "CustomResourceDefinition",
		ShortNames:   []string{"crd", "crds"},
		Categories:   []string{"api-extensions"},
		Namespaced:   false,
		New:          func() runtime.Object { return &apiextensionsv1.CustomResourceDefinition{} },
		NewList:      func() runtime.Object { return &apiextensionsv1.CustomResourceDefinitionList{} },
		Strategy: registry.Strategy{
			PrepareForCreate:       prepareForCreate,
			PrepareForUpdate:       prepareForUpdate,
			PrepareForStatusUpdate: prepareForStatusUpdate,
			Default:                setDefaults,
			Validate:               validateCreate,
			ValidateUpdate:         validateUpdate,
			ValidateStatusUpdate:   validateStatusUpdate,
			// Until its first DELETE has added the cleanup finalizer
			// (BeginDeletion), a CRD is held: deleting it only marks it.
			DeletionHeld: func(obj runtime.Object) bool {
				crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition)
				return ok && crd.DeletionTimestamp == nil
			},
			BeginDeletion: beginDeletion,
		},
		Status: true,
		Table:  table,
		// Upstream's set for CRDs is generic.ObjectMetaFieldsSet(meta,
		// true): metadata.namespace is there, always empty.
		Fields: func(obj runtime.Object) fields.Set {
			name := ""
			if crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition); ok {
				name = crd.Name
			}
			return fields.Set{"metadata.name": name, "metadata.namespace": ""}
		},
	}}
}

// setDefaults applies the generated defaults (singular, listKind,
// conversion strategy None, webhook service port 443, storedVersions),
// then normalizes the object as upstream's internal round trip does.
// An object that does not convert (a `default` that is not JSON, sent in
// protobuf) is left as it is for validation to refuse.
func setDefaults(obj runtime.Object) {
	crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition)
	if !ok {
		return
	}
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(crd)
	in, err := toInternal(crd)
	if err != nil {
		return
	}
	var out apiextensionsv1.CustomResourceDefinition
	if err := apiextensionsv1.Convert_apiextensions_CustomResourceDefinition_To_v1_CustomResourceDefinition(in, &out, nil); err != nil {
		return
	}
	// The conversion shares memory with crd, and gives every version
	// the same schema, subresources and columns pointers: copy, so that
	// each version's are its own.
	out.TypeMeta = crd.TypeMeta
	*crd = *out.DeepCopy()
}

// prepareForCreate clears status, sets generation 1 and records the
// storage version as the first stored version.
func prepareForCreate(_ context.Context, obj runtime.Object) {
	crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition)
	if !ok {
		return
	}
	crd.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
	crd.Generation = 1
	addStoredVersion(crd)
}

// prepareForUpdate keeps status as stored, but for a new storage version,
// which joins status.storedVersions; generation moves on when the spec
// changed.
func prepareForUpdate(_ context.Context, obj, old runtime.Object) {
	crd, ok1 := obj.(*apiextensionsv1.CustomResourceDefinition)
	oldCRD, ok2 := old.(*apiextensionsv1.CustomResourceDefinition)
	if !ok1 || !ok2 {
		return
	}
	crd.Status = *oldCRD.Status.DeepCopy()
	crd.Generation = oldCRD.Generation
	if !apiequality.Semantic.DeepEqual(crd.Spec, oldCRD.Spec) {
		crd.Generation++
	}
	addStoredVersion(crd)
}

// prepareForStatusUpdate keeps the spec as stored. Metadata is the
// write's, labels, annotations and finalizers included, as upstream's
// status strategy leaves it; the server keeps generation and the other
// system fields.
func prepareForStatusUpdate(_ context.Context, obj, old runtime.Object) {
	crd, ok1 := obj.(*apiextensionsv1.CustomResourceDefinition)
	oldCRD, ok2 := old.(*apiextensionsv1.CustomResourceDefinition)
	if !ok1 || !ok2 {
		return
	}
	crd.Spec = *oldCRD.Spec.DeepCopy()
}

// addStoredVersion appends the storage version to status.storedVersions
// when it is not there yet.
func addStoredVersion(crd *apiextensionsv1.CustomResourceDefinition) {
	v, err := apihelpers.GetCRDStorageVersion(crd)
	if err != nil || apihelpers.IsStoredVersion(crd, v) {
		return // no storage version: validation says so
	}
	crd.Status.StoredVersions = append(crd.Status.StoredVersions, v)
}

// beginDeletion adds the cleanup finalizer and the Terminating condition
// the CRD controller acts on.
func beginDeletion(obj runtime.Object) {
	crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition)
	if !ok {
		return
	}
	if !apihelpers.CRDHasFinalizer(crd, apiextensionsv1.CustomResourceCleanupFinalizer) {
		crd.Finalizers = append(crd.Finalizers, apiextensionsv1.CustomResourceCleanupFinalizer)
	}
	apihelpers.SetCRDCondition(crd, apiextensionsv1.CustomResourceDefinitionCondition{
		Type:    apiextensionsv1.Terminating,
		Status:  apiextensionsv1.ConditionTrue,
		Reason:  "InstanceDeletionPending",
		Message: "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
	})
}

func validateCreate(obj runtime.Object) field.ErrorList {
	crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition)
	if !ok {
		return nil
	}
	in, err := toInternal(crd)
	if err != nil {
		return field.ErrorList{undecodable(err)}
	}
	errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), in)
	return withoutServerMetaErrors(errs, crd, nil)
}

func validateUpdate(obj, old runtime.Object) field.ErrorList {
	crd, ok1 := obj.(*apiextensionsv1.CustomResourceDefinition)
	oldCRD, ok2 := old.(*apiextensionsv1.CustomResourceDefinition)
	if !ok1 || !ok2 {
		return nil
	}
	in, oldIn, errs := toInternalPair(crd, oldCRD)
	if errs != nil {
		return errs
	}
	errs = crdvalidation.ValidateCustomResourceDefinitionUpdate(context.Background(), in, oldIn)
	return withoutServerMetaErrors(errs, crd, oldCRD)
}

func validateStatusUpdate(obj, old runtime.Object) field.ErrorList {
	crd, ok1 := obj.(*apiextensionsv1.CustomResourceDefinition)
	oldCRD, ok2 := old.(*apiextensionsv1.CustomResourceDefinition)
	if !ok1 || !ok2 {
		return nil
	}
	in, oldIn, errs := toInternalPair(crd, oldCRD)
	if errs != nil {
		return errs
	}
	errs = crdvalidation.ValidateUpdateCustomResourceDefinitionStatus(context.Background(), in, oldIn)
	return withoutServerMetaErrors(errs, crd, oldCRD)
}

// toInternal converts crd to the library's internal form. The result
// shares memory with crd and must not be changed.
func toInternal(crd *apiextensionsv1.CustomResourceDefinition) (*crdinternal.CustomResourceDefinition, error) {
	out := &crdinternal.CustomResourceDefinition{}
	// The generated functions never use their conversion.Scope.
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(crd, out, nil); err != nil {
		return nil, err
	}
	return out, nil
}

func toInternalPair(crd, old *apiextensionsv1.CustomResourceDefinition) (in, oldIn *crdinternal.CustomResourceDefinition, errs field.ErrorList) {
	in, err := toInternal(crd)
	if err != nil {
		return nil, nil, field.ErrorList{undecodable(err)}
	}
	oldIn, err = toInternal(old)
	if err != nil {
		return nil, nil, field.ErrorList{field.InternalError(field.NewPath("spec"), fmt.Errorf("stored object: %w", err))}
	}
	return in, oldIn, nil
}

// undecodable reports a JSON value of the spec (default, enum, example)
// that is not JSON, which only a protobuf body can carry. Upstream fails
// such a request while decoding it.
func undecodable(err error) *field.Error {
	return field.Invalid(field.NewPath("spec"), field.OmitValueType{}, fmt.Sprintf("cannot be decoded: %v", err))
}

// withoutServerMetaErrors drops from errs the metadata errors the server
// reports itself (registry.Strategy: name format, labels, annotations,
// immutable fields), so that none is listed twice. The library's own
// metadata checks stay: the name must be spec.names.plural+"."+spec.group,
// and the api-approved.kubernetes.io annotation of protected groups.
func withoutServerMetaErrors(errs field.ErrorList, crd, old *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	metaPath := field.NewPath("metadata")
	server := metavalidation.ValidateObjectMeta(&crd.ObjectMeta, false, registry.NameIsDNSSubdomain, metaPath)
	if old != nil {
		server = append(server, metavalidation.ValidateObjectMetaUpdate(&crd.ObjectMeta, &old.ObjectMeta, metaPath)...)
	}
	if len(server) == 0 {
		return errs
	}
	type key struct {
		t             field.ErrorType
		field, detail string
	}
	seen := make(map[key]bool, len(server))
	for _, e := range server {
		seen[key{e.Type, e.Field, e.Detail}] = true
	}
	out := errs[:0:0]
	for _, e := range errs {
		if !seen[key{e.Type, e.Field, e.Detail}] {
			out = append(out, e)
		}
	}
	return out
}
