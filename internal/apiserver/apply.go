package apiserver

// Server-side apply: PATCH with Content-Type application/apply-patch+yaml
// (or +cbor). The body is a partial object, the configuration its
// manager (fieldManager, required) wants; the FieldManager merges it into
// the stored object by field ownership (managedfields.go), reporting 409
// with one cause per field when another manager owns a field the apply
// sets to a different value, unless force=true takes the field over. An
// apply to a missing object creates it (not through /status).
//
// The field manager named "kubectl" gets upstream's client-side to
// server-side upgrade: fields a client-side apply recorded in the
// last-applied-configuration annotation move to it without conflict
// when the values match, and that annotation is kept in step.

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/cbor/direct"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// patchType is the patch type a Content-Type names (its parameters
// dropped).
func patchType(contentType string) types.PatchType {
	mt, _, _ := strings.Cut(contentType, ";")
	return types.PatchType(strings.TrimSpace(mt))
}

// isApply reports whether a PATCH body is a server-side apply.
func isApply(contentType string) bool {
	switch patchType(contentType) {
	case types.ApplyYAMLPatchType, types.ApplyCBORPatchType:
		return true
	}
	return false
}

// patchOptions reads a PATCH's query and validates it as upstream does
// (422 on PatchOptions): an apply needs a fieldManager, force is for
// applies only.
func patchOptions(r *http.Request, contentType string) (*metav1.PatchOptions, error) {
	opts := &metav1.PatchOptions{}
	if err := scheme.ParameterCodec.DecodeParameters(r.URL.Query(), coreV1, opts); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if errs := validation.ValidatePatchOptions(opts, patchType(contentType)); len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: "PatchOptions"}, "", errs)
	}
	return opts, nil
}

// patchOwner is the fieldOwner of a PATCH that is not an apply.
func patchOwner(r *http.Request, contentType, sub string) (fieldOwner, error) {
	opts, err := patchOptions(r, contentType)
	if err != nil {
		return fieldOwner{}, err
	}
	name := opts.FieldManager
	if name == "" {
		name = prefixFromUserAgent(r.UserAgent())
	}
	return fieldOwner{manager: name, sub: sub}, nil
}

// apply serves a server-side apply PATCH of an object or its status.
func (s *Server) apply(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served, sub string, wr *writeRequest) error {
	opts, err := patchOptions(r, wr.contentType)
	if err != nil {
		return err
	}
	patchObj, err := decodeApplyPatch(wr.contentType, wr.body)
	if err != nil {
		return err
	}
	fm, err := s.fieldManager(sv, sub)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if fm == nil {
		return methodNotAllowed(info, r)
	}
	force := opts.Force != nil && *opts.Force
	gvk := sv.res.GroupVersionKind()
	var warnings []string
	applyTo := func(live runtime.Object) (runtime.Object, error) {
		live.GetObjectKind().SetGroupVersionKind(gvk)
		obj, err := fm.Apply(live, patchObj.DeepCopy(), opts.FieldManager, force)
		if err != nil {
			return nil, applyError(err)
		}
		if warnings, err = strictApplyCheck(wr.contentType, wr.directive, wr.body); err != nil {
			return nil, err
		}
		if err := pruneApplied(sv, obj); err != nil {
			return nil, err
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		if m.GetName() != info.name {
			return nil, nameMismatch(m.GetName(), info.name)
		}
		if sv.res.Namespaced && m.GetNamespace() != "" && m.GetNamespace() != info.namespace {
			return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
		return obj, nil
	}
	owner := fieldOwner{manager: opts.FieldManager, sub: sub, applied: true}
	code := http.StatusOK
	out, err := s.updateObject(r.Context(), sv, info, owner, wr.dry, applyTo)
	for attempt := 0; sub == "" && isMissing(err, sv, info.name) && attempt < 3; attempt++ {
		// Create on apply. A create racing ours makes it an update.
		empty, err2 := objectConverter{s: s}.New(gvk)
		if err2 != nil {
			return apierrors.NewInternalError(err2)
		}
		obj, err2 := applyTo(empty)
		if err2 != nil {
			return err2
		}
		code = http.StatusCreated
		out, err = s.createObject(r.Context(), sv, info.namespace, obj, wr.dry, owner)
		if !apierrors.IsAlreadyExists(err) {
			break
		}
		code = http.StatusOK
		out, err = s.updateObject(r.Context(), sv, info, owner, wr.dry, applyTo)
	}
	if err != nil {
		return err
	}
	addWarnings(w, warnings)
	return s.respond(w, r, code, wr.format, sv, out)
}

// isMissing reports whether err says the object to update does not exist.
func isMissing(err error, sv *served, name string) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) || !apierrors.IsNotFound(err) {
		return false
	}
	d := st.Status().Details
	gr := sv.groupResource()
	return d != nil && d.Name == name && d.Group == gr.Group && d.Kind == gr.Resource
}

// decodeApplyPatch reads an apply body: YAML (JSON is YAML) or CBOR.
func decodeApplyPatch(contentType string, body []byte) (*unstructured.Unstructured, error) {
	if len(body) == 0 {
		return nil, apierrors.NewBadRequest("the body of the request was empty")
	}
	obj := &unstructured.Unstructured{Object: map[string]any{}}
	if patchType(contentType) == types.ApplyCBORPatchType {
		if err := direct.Unmarshal(body, &obj.Object); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding CBOR: %v", err))
		}
		return obj, checkObjectShape(obj.Object)
	}
	if err := checkYAMLExpansion(body); err != nil {
		return nil, err
	}
	if err := utilyaml.Unmarshal(body, &obj.Object); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding YAML: %v", err))
	}
	if obj.Object == nil {
		obj.Object = map[string]any{}
	}
	if err := checkObjectShape(obj.Object); err != nil {
		return nil, err
	}
	return obj, nil
}

// strictApplyCheck is upstream's fieldValidation of an apply body:
// duplicate fields fail a Strict apply and warn otherwise (fields the
// schema does not declare always fail the apply, in the FieldManager).
func strictApplyCheck(contentType, directive string, body []byte) ([]string, error) {
	if directive == metav1.FieldValidationIgnore || patchType(contentType) == types.ApplyCBORPatchType {
		return nil, nil
	}
	if err := utilyaml.UnmarshalStrict(body, &map[string]any{}); err != nil {
		if directive == metav1.FieldValidationStrict {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("error strict decoding YAML: %v", err))
		}
		return []string{err.Error()}, nil
	}
	return nil, nil
}

// pruneApplied drops from an applied object the fields its schema does
// not know (custom resources). Upstream's apply fails on them, since its
// field manager knows the schema; ours tracks custom resources by
// structure, so the check is here, with upstream's message.
func pruneApplied(sv *served, obj runtime.Object) error {
	if sv.res.Prune == nil {
		return nil
	}
	pruned := sv.res.Prune(obj)
	if len(pruned) == 0 {
		return nil
	}
	msgs := make([]string, len(pruned))
	for i, p := range pruned {
		msgs[i] = "." + p + ": field not declared in schema"
	}
	return apierrors.NewBadRequest(fmt.Sprintf("failed to create typed patch object (%s): %s", sv.res.GroupVersionKind(), strings.Join(msgs, ", ")))
}

// applyError turns a FieldManager error into an API error. Conflicts
// already are (409, reason Conflict, one FieldManagerConflict cause per
// field). A patch that does not fit the schema is the client's fault:
// 400 here (upstream answers 500 with the same message).
func applyError(err error) error {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return err
	}
	if strings.Contains(err.Error(), "failed to create typed patch object") {
		return apierrors.NewBadRequest(err.Error())
	}
	return apierrors.NewInternalError(err)
}
