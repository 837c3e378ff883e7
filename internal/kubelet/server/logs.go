package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// serveContainerLogs answers GET /containerLogs/{namespace}/{pod}/{container}
// with the container's log as text, selected by the v1.PodLogOptions query
// parameters (follow, tailLines, sinceSeconds, sinceTime, timestamps,
// limitBytes, previous).
func (s *Server) serveContainerLogs(w http.ResponseWriter, r *http.Request) {
	ns, pod, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	q, err := parseLogQuery(r.URL.Query(), time.Now())
	if err != nil {
		writeStatus(w, statusCode(err), err.Error())
		return
	}
	id, path, err := s.pods.Container(ns, pod, container, q.previous)
	if err != nil {
		writeLookupError(w, err)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, fmt.Sprintf("failed to open log file %q: %v", path, err))
		return
	}
	defer f.Close()

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	follow := logFollow{
		running:    func(ctx context.Context) (bool, error) { return s.containerRunning(ctx, id) },
		poll:       s.logPoll,
		checkEvery: s.logCheck,
		flush:      func() { _ = rc.Flush() },
	}
	if err := copyLog(r.Context(), f, q.logOptions, follow, w); err != nil {
		// The status line is gone; all that is left is to say so here.
		s.log.Warn("container log copy ended early", "namespace", ns, "pod", pod, "container", container, "err", err)
	}
}

// containerRunning reports whether a followed container still writes its
// log. An unreachable runtime counts as running, as upstream does: the
// container outlives its runtime's API.
func (s *Server) containerRunning(ctx context.Context, id string) (bool, error) {
	resp, err := s.runtime.ContainerStatus(ctx, id, false)
	switch grpcstatus.Code(err) {
	case codes.OK:
	case codes.Unavailable:
		return true, nil
	case codes.NotFound:
		return false, nil
	default:
		return false, err
	}
	return resp.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING, nil
}

// logQuery is the parsed query of a containerLogs request.
type logQuery struct {
	logOptions
	previous bool
}

// queryError carries the HTTP code of a bad query: 400 for what does not
// parse, 422 for values upstream's PodLogOptions validation refuses.
type queryError struct {
	code int
	msg  string
}

func (e *queryError) Error() string { return e.msg }

func statusCode(err error) int {
	if qe, ok := err.(*queryError); ok {
		return qe.code
	}
	return http.StatusBadRequest
}

func parseLogQuery(q url.Values, now time.Time) (logQuery, error) {
	out := logQuery{logOptions: logOptions{tail: -1}}
	bad := func(name, v string) error {
		return &queryError{http.StatusBadRequest, fmt.Sprintf("unable to decode query parameter %s=%q", name, v)}
	}
	invalid := func(name string, v int64, why string) error {
		return &queryError{http.StatusUnprocessableEntity, fmt.Sprintf("%s: Invalid value: %d: %s", name, v, why)}
	}
	for name, dst := range map[string]*bool{"follow": &out.follow, "timestamps": &out.timestamps, "previous": &out.previous} {
		if v := q.Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return out, bad(name, v)
			}
			*dst = b
		}
	}
	// "tail" is the pre-1.0 spelling of tailLines, "all" meaning no limit.
	tail := q.Get("tailLines")
	if legacy := q.Get("tail"); legacy != "" && legacy != "all" {
		tail = legacy
	}
	if tail != "" {
		n, err := strconv.ParseInt(tail, 10, 64)
		if err != nil {
			return out, bad("tailLines", tail)
		}
		if n < 0 {
			return out, invalid("tailLines", n, "must be greater than or equal to 0")
		}
		out.tail = n
	}
	if v := q.Get("limitBytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return out, bad("limitBytes", v)
		}
		if n < 1 {
			return out, invalid("limitBytes", n, "must be greater than 0")
		}
		out.limit = n
	}
	secs, stamp := q.Get("sinceSeconds"), q.Get("sinceTime")
	if secs != "" && stamp != "" {
		return out, &queryError{http.StatusUnprocessableEntity, "at most one of `sinceTime` or `sinceSeconds` may be specified"}
	}
	if secs != "" {
		n, err := strconv.ParseInt(secs, 10, 64)
		if err != nil {
			return out, bad("sinceSeconds", secs)
		}
		if n < 1 {
			return out, invalid("sinceSeconds", n, "must be greater than 0")
		}
		out.since = now.Add(-time.Duration(n) * time.Second)
	}
	if stamp != "" {
		t, err := time.Parse(time.RFC3339, stamp)
		if err != nil {
			return out, bad("sinceTime", stamp)
		}
		out.since = t
	}
	return out, nil
}
