package apiserver

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// serveNodeProxy serves nodes/<name>/proxy/<path> (any method): the
// request goes to https://<kubelet>/<path> with its query, without the
// client's credentials, and the kubelet's answer comes back as it is,
// flushed as it arrives. Upgrade requests pass through too; all end when
// the server drains.
func (s *Server) serveNodeProxy(w http.ResponseWriter, r *http.Request, info requestInfo) error {
	host, err := s.kubeletHost(r.Context(), info.name)
	if err != nil {
		return err
	}
	path := nodeProxyPath(r.URL.Path, info.name)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "https"
			pr.Out.URL.Host = host
			pr.Out.URL.Path = path
			pr.Out.URL.RawPath = ""
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			pr.Out.Host = host
			pr.Out.Header = forwardHeader(pr.Out.Header)
		},
		Transport:     s.kubelet.transport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, r, apierrors.NewServiceUnavailable(fmt.Sprintf("error trying to reach the kubelet of node %s: %v", info.name, err)))
		},
	}
	ctx, cancel := s.untilShutdown(r.Context())
	defer cancel()
	rp.ServeHTTP(w, r.WithContext(ctx))
	return nil
}

// nodeProxyPath is the kubelet path of a nodes/<name>/proxy request: what
// follows ".../proxy", "/" when nothing does. A trailing slash is kept.
func nodeProxyPath(requestPath, node string) string {
	marker := "/nodes/" + node + "/proxy"
	i := strings.Index(requestPath, marker)
	if i < 0 {
		return "/"
	}
	rest := requestPath[i+len(marker):]
	if rest == "" {
		return "/"
	}
	return rest
}
