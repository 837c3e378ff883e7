package apiserver

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// minWatchTimeout is upstream's --min-request-timeout: a watch without
// timeoutSeconds lasts a random time between this and twice this.
const minWatchTimeout = 30 * time.Minute

// watch serves a WATCH as a stream of watch events, framed as the
// negotiated media type frames streams (newline-delimited JSON, length
// prefixed protobuf).
func (s *Server) watch(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	format, ok := negotiateOutput(r)
	if !ok || format.info.StreamSerializer == nil {
		return notAcceptable()
	}
	if format.target != asObject && format.target != asTable && format.target != asPartialObjectMetadata {
		return notAcceptable()
	}
	opts, sopts, err := s.listOptions(r, info, sv)
	if err != nil {
		return err
	}
	timeout := minWatchTimeout + time.Duration(rand.Int64N(int64(minWatchTimeout)))
	if opts.TimeoutSeconds != nil {
		timeout = time.Duration(*opts.TimeoutSeconds) * time.Second
	}
	ctx := r.Context()
	enc := newWatchEncoder(format, sv, func(ev watch.Event) (runtime.Object, error) {
		return s.watchObject(r, sv, format.target, ev)
	})
	sopts.SharedEncodings = enc.shareable
	wi, err := sv.store.Watch(ctx, sv.listPrefix(info.namespace), sopts)
	if err != nil {
		return storageError(err, sv.groupResource(), "")
	}
	defer wi.Stop()

	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", format.contentType())
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.shutdown:
			return nil
		case <-timer.C:
			return nil
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return nil
			}
			frame, err := enc.encode(ev)
			if err != nil {
				if !errors.Is(err, errEndWatch) {
					s.log.Warn("encoding watch event", "err", err)
				}
				return nil
			}
			if _, err := w.Write(frame); err != nil {
				return nil
			}
			if len(wi.ResultChan()) == 0 {
				_ = rc.Flush()
			}
		}
	}
}

// errEndWatch ends a watch without a word: its event cannot be rendered.
var errEndWatch = errors.New("watch event cannot be rendered")

// watchObject is the object a watch event carries on the wire: the stored
// object converted to the served version, as a table or as metadata as the
// client asked, or the Status of an error.
func (s *Server) watchObject(r *http.Request, sv *served, tgt target, ev watch.Event) (runtime.Object, error) {
	obj := ev.Object
	var err error
	if ev.Type == watch.Error {
		// ev.Object is a Status (e.g. 410 Gone after compaction).
		return errorStatus(obj), nil
	}
	if obj, err = sv.fromStored(obj); err != nil {
		return errorStatus(toStatus(err)), nil
	}
	switch {
	case tgt == asTable && ev.Type != watch.Bookmark:
		t, err := s.toTable(r, sv, []runtime.Object{obj}, nil)
		if err != nil {
			return nil, errEndWatch
		}
		return t, nil
	case tgt == asPartialObjectMetadata:
		return partialMetadata(obj), nil
	}
	return obj, nil
}

// errorStatus makes sure an error event carries a Status with its type set.
func errorStatus(obj runtime.Object) runtime.Object {
	st, ok := obj.(*metav1.Status)
	if !ok {
		st = toStatus(apierrors.NewInternalError(nil))
	}
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	st.Status = metav1.StatusFailure
	return st
}
