package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// writeStatus answers with a metav1.Status body, as the API server would, so
// that whatever proxies it (and kubectl behind that) can show the message.
func writeStatus(w http.ResponseWriter, code int, msg string) {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  msg,
		Reason:   reasonFor(code),
		Code:     int32(code),
	}
	body, err := json.Marshal(&st)
	if err != nil { // cannot happen for this type; keep the status code anyway
		http.Error(w, msg, code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

func reasonFor(code int) metav1.StatusReason {
	switch code {
	case http.StatusBadRequest:
		return metav1.StatusReasonBadRequest
	case http.StatusNotFound:
		return metav1.StatusReasonNotFound
	case http.StatusUnprocessableEntity:
		return metav1.StatusReasonInvalid
	case http.StatusMethodNotAllowed:
		return metav1.StatusReasonMethodNotAllowed
	case http.StatusServiceUnavailable:
		return metav1.StatusReasonServiceUnavailable
	case http.StatusBadGateway, http.StatusInternalServerError:
		return metav1.StatusReasonInternalError
	}
	return metav1.StatusReasonUnknown
}

// writeLookupError answers for an error from Pods: 404 for ErrNotFound, 400
// for ErrNotAvailable (as upstream, where "container ... is not available"
// and "previous terminated container ... not found" are 400s), 500 otherwise.
func writeLookupError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeStatus(w, http.StatusNotFound, clientMessage(err, ErrNotFound))
	case errors.Is(err, ErrNotAvailable):
		writeStatus(w, http.StatusBadRequest, clientMessage(err, ErrNotAvailable))
	default:
		writeStatus(w, http.StatusInternalServerError, err.Error())
	}
}

// clientMessage drops the trailing ": <sentinel>" a Pods implementation
// wraps, so the client reads upstream's sentence and nothing more.
func clientMessage(err, sentinel error) string {
	msg := err.Error()
	if trimmed, ok := strings.CutSuffix(msg, ": "+sentinel.Error()); ok && trimmed != "" {
		return trimmed
	}
	return msg
}

// writeRuntimeError answers for an error from a CRI call, mapping the gRPC
// code to the HTTP one the way upstream's streaming server does. The message
// is what, then the runtime's own message without the gRPC decoration.
func writeRuntimeError(w http.ResponseWriter, what string, err error) {
	code := http.StatusInternalServerError
	msg := what + ": " + err.Error()
	if st, ok := grpcstatus.FromError(err); ok {
		msg = what + ": " + st.Message()
		switch st.Code() {
		case codes.NotFound:
			code = http.StatusNotFound
		case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
			code = http.StatusBadRequest
		case codes.Unavailable, codes.ResourceExhausted:
			code = http.StatusServiceUnavailable
		}
	}
	writeStatus(w, code, msg)
}
