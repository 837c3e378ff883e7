package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// Bounds on what one patch may make the server do, as upstream's. A JSON
// patch is the one patch type whose result can be far larger than the
// patch and the object together: each "copy" may double the document, so
// 20 copies of a few hundred bytes would ask for gigabytes
// (CVE-2019-1002100). Merge and strategic merge patches, and apply
// configurations, produce at most the object plus the patch; their YAML
// is read by a decoder that refuses excessive aliasing.
const (
	// maxJSONPatchOperations is the most operations a JSON patch may hold
	// (413 past it).
	maxJSONPatchOperations = 10000
	// maxJSONPatchCopyBytes is the most a JSON patch's "copy" operations
	// may add to a document, summed over the patch (422 past it): twice
	// the largest object etcd accepts, as upstream's JSONPatchMaxCopyBytes.
	maxJSONPatchCopyBytes = 3 * 1024 * 1024
)

// The JSON patch library bounds copies through a package variable only;
// nothing else in this binary applies JSON patches with other limits.
func init() { jsonpatch.AccumulatedCopySizeLimit = maxJSONPatchCopyBytes }

// patch serves PATCH with a JSON patch, a JSON merge patch, a strategic
// merge patch or a server-side apply (apply.go).
func (s *Server) patch(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served, sub string) error {
	wr, err := readWrite(r)
	if err != nil {
		return err
	}
	if isApply(wr.contentType) {
		return s.apply(w, r, info, sv, sub, wr)
	}
	owner, err := patchOwner(r, wr.contentType, sub)
	if err != nil {
		return err
	}
	if sv.res.JSONOnly && patchType(wr.contentType) == types.StrategicMergePatchType {
		// A custom resource has no patch strategies to merge by.
		return apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", sv.groupResource(), "",
			"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml", 0, false)
	}
	apply, err := patcher(wr.contentType, wr.body, sv.res.New())
	if err != nil {
		return err
	}
	var warnings []string
	out, err := s.updateObject(r.Context(), sv, info, owner, wr.dry, func(current runtime.Object) (runtime.Object, error) {
		cur, err := json.Marshal(current)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		patched, err := apply(cur)
		if err != nil {
			return nil, err
		}
		obj, warns, err := decodeWith("application/json", wr.directive, patched, sv.res.GroupVersionKind(), sv.res.New(), sv.res.Prune)
		if err != nil {
			return nil, err
		}
		warnings = warns
		return obj, nil
	})
	if err != nil {
		return err
	}
	addWarnings(w, warnings)
	return s.respond(w, r, http.StatusOK, wr.format, sv, out)
}

// patcher returns the function that applies a patch body of the given
// Content-Type to an object's JSON.
func patcher(contentType string, body []byte, schemaObj runtime.Object) (func([]byte) ([]byte, error), error) {
	if len(body) == 0 {
		return nil, apierrors.NewBadRequest("the body of the request was empty")
	}
	mt := contentType
	for i := 0; i < len(mt); i++ {
		if mt[i] == ';' {
			mt = mt[:i]
			break
		}
	}
	// A JSON patch is a list of operations, bounded on its own, and
	// merges no lists.
	if err := checkPatchShape(body, types.PatchType(mt) != types.JSONPatchType); err != nil {
		return nil, err
	}
	switch types.PatchType(mt) {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(body)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		if len(p) > maxJSONPatchOperations {
			return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf(
				"The allowed maximum operations in a JSON patch is %d, got %d", maxJSONPatchOperations, len(p)))
		}
		return func(cur []byte) ([]byte, error) {
			out, err := p.Apply(cur)
			if err != nil {
				return nil, jsonPatchFailed(err)
			}
			return out, nil
		}, nil
	case types.MergePatchType:
		if !json.Valid(body) {
			return nil, apierrors.NewBadRequest("error decoding patch: invalid JSON")
		}
		return func(cur []byte) ([]byte, error) {
			out, err := jsonpatch.MergePatch(cur, body)
			if err != nil {
				return nil, apierrors.NewBadRequest(err.Error())
			}
			return out, nil
		}, nil
	case types.StrategicMergePatchType:
		if !json.Valid(body) {
			return nil, apierrors.NewBadRequest("error decoding patch: invalid JSON")
		}
		return func(cur []byte) ([]byte, error) {
			out, err := strategicpatch.StrategicMergePatch(cur, body, schemaObj)
			if err != nil {
				return nil, apierrors.NewBadRequest(err.Error())
			}
			return out, nil
		}, nil
	case types.ApplyYAMLPatchType, types.ApplyCBORPatchType:
		return nil, apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", schemaGR, "",
			"server-side apply to the scale subresource is "+errNotFinished.Error(), 0, false)
	}
	return nil, unsupportedMediaType(contentType)
}

// jsonPatchFailed is the 422 of a JSON patch that does not apply (a
// failed test, a missing path, copies past maxJSONPatchCopyBytes). Upstream
// answers with the bare "the server rejected our request due to an error
// in our request"; we add what went wrong, to the message and as a cause.
func jsonPatchFailed(err error) error {
	se := apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "patch", schemaGR, "", err.Error(), 0, true)
	se.ErrStatus.Message += ": " + err.Error()
	return se
}

// schemaGR is the empty group resource of errors about a request, not an object.
var schemaGR = schema.GroupResource{}
