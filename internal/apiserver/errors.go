package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/storage"
)

// storageError turns a storage sentinel into the API error upstream returns
// for it. Other errors pass through (and become 500s).
func storageError(err error, gr schema.GroupResource, name string) error {
	switch {
	case err == nil:
		return nil
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return err
	}
	var expiredContinue *storage.ExpiredContinueError
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return apierrors.NewNotFound(gr, name)
	case errors.Is(err, storage.ErrAlreadyExists):
		return apierrors.NewAlreadyExists(gr, name)
	case errors.Is(err, storage.ErrConflict):
		return apierrors.NewConflict(gr, name, errors.New(conflictMessage))
	case errors.As(err, &expiredContinue):
		// 410 with a token that goes on at the latest revision, as
		// upstream: the client may take the inconsistent rest.
		st := apierrors.NewResourceExpired(expiredContinue.Error())
		st.ErrStatus.ListMeta.Continue = expiredContinue.Continue
		return st
	case errors.Is(err, storage.ErrExpired):
		return apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %v", err))
	case errors.Is(err, storage.ErrTimeout):
		return apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %v", err), 1)
	case errors.Is(err, storage.ErrInvalidResourceVersion):
		return apierrors.NewBadRequest(err.Error())
	case errors.Is(err, storage.ErrInvalidContinue):
		return apierrors.NewBadRequest(fmt.Sprintf("invalid continue token: %v", err))
	}
	return err
}

// conflictMessage is upstream's text for a stale write.
const conflictMessage = "the object has been modified; please apply your changes to the latest version and try again"

// toStatus converts any error to the Status object sent to the client.
func toStatus(err error) *metav1.Status {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		s := st.Status()
		return &s
	}
	s := apierrors.NewInternalError(err).Status()
	return &s
}

// writeError sends err as a Status in the client's preferred encoding
// (JSON when it asked for something we cannot encode a Status in).
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := toStatus(err)
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	status.Status = metav1.StatusFailure
	code := int(status.Code)
	if code == 0 {
		code = http.StatusInternalServerError
		status.Code = int32(code)
	}
	format, ok := negotiateOutput(r)
	if !ok || format.target != asObject {
		format = outputFormat{info: mediaInfo("application/json")}
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="skiff"`)
	}
	if d := status.Details; d != nil && d.RetryAfterSeconds > 0 && (code == http.StatusTooManyRequests || code >= 500) {
		w.Header().Set("Retry-After", strconv.Itoa(int(d.RetryAfterSeconds)))
	}
	w.Header().Set("Content-Type", format.info.MediaType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = format.encoder().Encode(status, w)
}
