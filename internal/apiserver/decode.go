package apiserver

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"reflect"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// maxBodyBytes is the largest request body accepted, as upstream (3 MiB).
const maxBodyBytes = 3 * 1024 * 1024

// readBody reads a request body, refusing one over maxBodyBytes with 413.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, requestTimedOut() // the body came too slowly: serveWithTimeout
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading request body: %v", err))
	}
	if len(b) > maxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", maxBodyBytes))
	}
	return b, nil
}

// fieldValidation returns the request's fieldValidation directive:
// Strict, Warn (the default) or Ignore.
func fieldValidation(r *http.Request) (string, error) {
	v := r.URL.Query().Get("fieldValidation")
	switch v {
	case "":
		return metav1.FieldValidationWarn, nil
	case metav1.FieldValidationStrict, metav1.FieldValidationWarn, metav1.FieldValidationIgnore:
		return v, nil
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("fieldValidation must be one of Ignore, Warn, or Strict, got %q", v))
}

// writeRequest is what every write reads from its request before it acts:
// the response format, dryRun, the body and the fieldValidation directive.
type writeRequest struct {
	format      outputFormat
	dry         bool
	body        []byte
	directive   string
	contentType string
}

// readWrite reads a write request, refusing it (406, 400, 413) before
// anything is decoded.
func readWrite(r *http.Request) (*writeRequest, error) {
	format, ok := negotiateOutput(r)
	if !ok {
		return nil, notAcceptable()
	}
	dry, err := dryRun(r)
	if err != nil {
		return nil, err
	}
	directive, err := fieldValidation(r)
	if err != nil {
		return nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if r.Context().Value(jsonOnlyKey{}) != nil {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == runtime.ContentTypeProtobuf {
			return nil, unsupportedMediaType(mt)
		}
	}
	return &writeRequest{format: format, dry: dry, body: body, directive: directive, contentType: r.Header.Get("Content-Type")}, nil
}

// decode decodes the body into into, whose kind must be gvk, honouring
// the fieldValidation directive.
func (wr *writeRequest) decode(gvk schema.GroupVersionKind, into runtime.Object) (runtime.Object, []string, error) {
	return decodeWith(wr.contentType, wr.directive, wr.body, gvk, into, nil)
}

// readServed reads a write request whose body is an object of sv's kind,
// decodes it and passes the decoder's warnings on to the client: the start
// of every create and update.
func readServed(w http.ResponseWriter, r *http.Request, sv *served) (*writeRequest, runtime.Object, error) {
	wr, err := readWrite(r)
	if err != nil {
		return nil, nil, err
	}
	obj, warnings, err := decodeWith(wr.contentType, wr.directive, wr.body, sv.res.GroupVersionKind(), sv.res.New(), sv.res.Prune)
	if err != nil {
		return nil, nil, err
	}
	addWarnings(w, warnings)
	return wr, obj, nil
}

// nameMismatch is upstream's error for a body naming another object than
// the URL.
func nameMismatch(inBody, inURL string) error {
	return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", inBody, inURL))
}

// decodeWith decodes body as the Content-Type says into into, whose kind
// must be gvk. prune, when set, drops the fields the resource's schema
// does not know; they count as unknown fields, as the decoder's own.
func decodeWith(contentType, directive string, body []byte, gvk schema.GroupVersionKind, into runtime.Object, prune func(runtime.Object) []string) (runtime.Object, []string, error) {
	if len(body) == 0 {
		return nil, nil, apierrors.NewBadRequest("the body of the request was empty")
	}
	dec, mt, ok := inputSerializer(contentType, directive != metav1.FieldValidationIgnore)
	if !ok {
		return nil, nil, unsupportedMediaType(mt)
	}
	if mt == "application/yaml" {
		if err := checkYAMLExpansion(body); err != nil {
			return nil, nil, err
		}
	}
	obj, got, err := dec.Decode(body, &gvk, into)
	if prune != nil && obj != nil && (err == nil || runtime.IsStrictDecodingError(err)) {
		err = withUnknownFields(err, prune(obj))
	}
	var warnings []string
	if err != nil {
		if !runtime.IsStrictDecodingError(err) || obj == nil {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v",
				gvk.Kind, gvk.Version, gvk.Kind, err))
		}
		strictErr, _ := runtime.AsStrictDecodingError(err)
		if directive == metav1.FieldValidationStrict {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v",
				gvk.Kind, gvk.Version, gvk.Kind, err))
		}
		if strictErr != nil {
			for _, e := range strictErr.Errors() {
				warnings = append(warnings, e.Error())
			}
		} else {
			warnings = append(warnings, err.Error())
		}
	}
	if got != nil && (got.Group != gvk.Group || got.Version != gvk.Version) {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)",
			got.GroupVersion().String(), gvk.GroupVersion().String()))
	}
	if got != nil && got.Kind != gvk.Kind || reflect.TypeOf(obj) != reflect.TypeOf(into) {
		kind := ""
		if got != nil {
			kind = got.Kind
		}
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the kind in the data (%s) does not match the expected kind (%s)", kind, gvk.Kind))
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return obj, warnings, nil
}

// withUnknownFields adds the pruned fields' paths to a decoder's strict
// errors (err is nil or one), in upstream's words: unknown field "spec.x".
func withUnknownFields(err error, pruned []string) error {
	if len(pruned) == 0 {
		return err
	}
	var errs []error
	if strictErr, ok := runtime.AsStrictDecodingError(err); ok && strictErr != nil {
		errs = strictErr.Errors()
	}
	for _, p := range pruned {
		errs = append(errs, fmt.Errorf("unknown field %q", p))
	}
	return runtime.NewStrictDecodingError(errs)
}

// addWarnings sends warnings in the Warning header as upstream does
// (code 299, agent "-").
func addWarnings(w http.ResponseWriter, warnings []string) {
	for _, msg := range warnings {
		msg = strings.ReplaceAll(msg, `"`, `\"`)
		w.Header().Add("Warning", fmt.Sprintf(`299 - "%s"`, msg))
	}
}

// unsupportedMediaType is the 415 for a body we cannot read.
func unsupportedMediaType(mediaType string) error {
	return apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "", schema.GroupResource{}, "",
		fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got %q)", mediaType), 0, false)
}
