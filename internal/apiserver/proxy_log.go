package apiserver

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxKubeletErrorBody bounds how much of a kubelet's error answer is read
// into the Status sent to the client (upstream reads as much).
const maxKubeletErrorBody = 50000

// serveLog serves GET pods/<name>/log: it validates the options, picks the
// container and streams /containerLogs/<ns>/<pod>/<container> from the
// pod's kubelet, flushing as data comes when following. A pod not yet
// scheduled has no logs: 204 No Content, as upstream answers.
func (s *Server) serveLog(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	if info.verb != "get" {
		return methodNotAllowed(info, r)
	}
	opts, err := podLogOptions(r.URL.Query())
	if err != nil {
		return err
	}
	if errs := validatePodLogOptions(opts); len(errs) > 0 {
		return apierrors.NewInvalid(schema.GroupKind{Kind: "PodLogOptions"}, info.name, errs)
	}
	pod, err := getPod(r.Context(), info, sv)
	if err != nil {
		return err
	}
	container, err := podContainer(pod, opts.Container)
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	host, err := s.kubeletHost(r.Context(), pod.Spec.NodeName)
	if err != nil {
		return err
	}
	loc := kubeletURL(host, fmt.Sprintf("/containerLogs/%s/%s/%s", pod.Namespace, pod.Name, container), kubeletLogQuery(opts))

	ctx, cancel := s.untilShutdown(r.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	resp, err := s.kubelet.transport.RoundTrip(req)
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("reaching the kubelet of node %s: %w", pod.Spec.NodeName, err))
	}
	defer resp.Body.Close()
	if err := kubeletResponseError(resp, schema.GroupResource{Resource: "pods/log"}, info.name); err != nil {
		return err
	}
	if wsstream.IsWebSocketRequest(r) {
		return s.serveLogWebSocket(w, r, resp.Body)
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	streamBody(w, resp.Body, opts.Follow)
	return nil
}

// serveLogWebSocket sends a log stream over a WebSocket, as upstream's API
// server does for any streamed GET asked for with an upgrade: a message for
// every read, raw with subprotocol binary.k8s.io (or none), base64 text with
// base64.binary.k8s.io, after an empty first message; the socket closes when
// the stream ends. A client that offers only other subprotocols gets 400
// before the upgrade (the WebSocket library would refuse the handshake
// without ever returning).
func (s *Server) serveLogWebSocket(w http.ResponseWriter, r *http.Request, body io.Reader) error {
	protocols := wsstream.NewDefaultReaderProtocols()
	if offered := offeredSubprotocols(r); len(offered) > 0 {
		if !slices.ContainsFunc(offered, func(p string) bool { _, ok := protocols[p]; return ok }) {
			supported := slices.Sorted(maps.Keys(protocols))
			return apierrors.NewBadRequest(fmt.Sprintf("requested protocol(s) are not supported: %v; supports %q", offered, supported))
		}
	}
	// The WebSocket library asserts http.Hijacker on the writer itself.
	if err := wsstream.NewReader(&eofApart{r: body}, true, protocols).Copy(rawWriter(w), r); err != nil {
		s.log.Debug("pod log websocket ended", "pod", r.URL.Path, "err", err)
	}
	return nil
}

// eofApart returns io.EOF on a read of its own: wsstream's copy drops the
// data of a read that ends with io.EOF, which is how a response body of
// known length ends.
type eofApart struct {
	r   io.Reader
	eof bool
}

func (e *eofApart) Read(p []byte) (int, error) {
	if e.eof {
		return 0, io.EOF
	}
	n, err := e.r.Read(p)
	if err == io.EOF && n > 0 {
		e.eof = true
		return n, nil
	}
	return n, err
}

// offeredSubprotocols lists the Sec-WebSocket-Protocol values of r.
func offeredSubprotocols(r *http.Request) []string {
	var out []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// streamBody copies body to w, flushing after every read when flush is
// set. It returns when body ends or the client goes away.
func streamBody(w http.ResponseWriter, body io.Reader, flush bool) {
	rc := http.NewResponseController(w)
	buf := make([]byte, 32*1024)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flush {
				_ = rc.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

// kubeletResponseError turns a kubelet's non-2xx answer into the Status
// upstream's response checker makes of it; nil for success.
func kubeletResponseError(resp *http.Response, gr schema.GroupResource, name string) error {
	if resp.StatusCode >= http.StatusOK && resp.StatusCode <= http.StatusPartialContent {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKubeletErrorBody))
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	text := string(body)
	switch resp.StatusCode {
	case http.StatusInternalServerError:
		return apierrors.NewInternalError(errors.New(text))
	case http.StatusBadRequest:
		return apierrors.NewBadRequest(text)
	}
	return apierrors.NewGenericServerResponse(resp.StatusCode, "", gr, name, text, 0, false)
}

// podLogOptions reads the query of a pods/log request. The stream field
// (alpha PodLogsQuerySplitStreams, off by default upstream) is ignored.
func podLogOptions(q url.Values) (*corev1.PodLogOptions, error) {
	opts := &corev1.PodLogOptions{
		Container:                    q.Get("container"),
		Follow:                       queryBool(q, "follow"),
		Previous:                     queryBool(q, "previous"),
		Timestamps:                   queryBool(q, "timestamps"),
		InsecureSkipTLSVerifyBackend: queryBool(q, "insecureSkipTLSVerifyBackend"),
	}
	for _, p := range []struct {
		key string
		dst **int64
	}{{"sinceSeconds", &opts.SinceSeconds}, {"tailLines", &opts.TailLines}, {"limitBytes", &opts.LimitBytes}} {
		v := q.Get(p.key)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("%s: invalid value %q: must be an integer", p.key, v))
		}
		*p.dst = &n
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("sinceTime: invalid value %q: must be an RFC 3339 time", v))
		}
		mt := metav1.NewTime(t)
		opts.SinceTime = &mt
	}
	return opts, nil
}

// validatePodLogOptions is upstream's ValidatePodLogOptions.
func validatePodLogOptions(opts *corev1.PodLogOptions) field.ErrorList {
	var errs field.ErrorList
	if opts.TailLines != nil && *opts.TailLines < 0 {
		errs = append(errs, field.Invalid(field.NewPath("tailLines"), *opts.TailLines, "must be greater than or equal to 0"))
	}
	if opts.LimitBytes != nil && *opts.LimitBytes < 1 {
		errs = append(errs, field.Invalid(field.NewPath("limitBytes"), *opts.LimitBytes, "must be greater than 0"))
	}
	switch {
	case opts.SinceSeconds != nil && opts.SinceTime != nil:
		errs = append(errs, field.Forbidden(field.NewPath(""), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
	case opts.SinceSeconds != nil && *opts.SinceSeconds < 1:
		errs = append(errs, field.Invalid(field.NewPath("sinceSeconds"), *opts.SinceSeconds, "must be greater than 0"))
	}
	return errs
}

// kubeletLogQuery is the query of the kubelet's /containerLogs for opts.
func kubeletLogQuery(opts *corev1.PodLogOptions) url.Values {
	q := url.Values{}
	if opts.Follow {
		q.Set("follow", "true")
	}
	if opts.Previous {
		q.Set("previous", "true")
	}
	if opts.Timestamps {
		q.Set("timestamps", "true")
	}
	if opts.SinceSeconds != nil {
		q.Set("sinceSeconds", strconv.FormatInt(*opts.SinceSeconds, 10))
	}
	if opts.SinceTime != nil {
		q.Set("sinceTime", opts.SinceTime.UTC().Format(time.RFC3339))
	}
	if opts.TailLines != nil {
		q.Set("tailLines", strconv.FormatInt(*opts.TailLines, 10))
	}
	if opts.LimitBytes != nil {
		q.Set("limitBytes", strconv.FormatInt(*opts.LimitBytes, 10))
	}
	return q
}
