package apiserver

import (
	"bytes"
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

	framer := format.info.StreamSerializer.Framer.NewFrameWriter(w)
	streamEnc := format.info.StreamSerializer.Serializer
	objEnc := format.info.Serializer
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var buf bytes.Buffer
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
			obj := ev.Object
			if ev.Type == watch.Error {
				// ev.Object is a Status (e.g. 410 Gone after compaction).
				obj = errorStatus(obj)
			} else if obj, err = sv.fromStored(obj); err != nil {
				obj = errorStatus(toStatus(err))
			} else if format.target == asTable && ev.Type != watch.Bookmark {
				t, err := s.toTable(r, sv, []runtime.Object{obj}, nil)
				if err != nil {
					return nil
				}
				obj = t
			} else if format.target == asPartialObjectMetadata {
				obj = partialMetadata(obj)
			}
			buf.Reset()
			if err := objEnc.Encode(obj, &buf); err != nil {
				s.log.Warn("encoding watch event", "err", err)
				return nil
			}
			out := &metav1.WatchEvent{Type: string(ev.Type), Object: runtime.RawExtension{Raw: buf.Bytes()}}
			if err := streamEnc.Encode(out, framer); err != nil {
				return nil
			}
			if len(wi.ResultChan()) == 0 {
				_ = rc.Flush()
			}
		}
	}
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
