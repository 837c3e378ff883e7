package apiserver

import (
	"fmt"
	"net/http"
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
	path := proxySubPath(r.URL.Path, "nodes", info.name)
	return s.reverseProxy(w, r, "https", host, path, s.kubelet.transport, fmt.Sprintf("the kubelet of node %s", info.name))
}
