package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/registry"
)

// RemoteAPI is a group/version another API server serves (an extension
// API server, registered by an APIService with a service): this server
// proxies every request under /apis/<group>/<version> to it, as
// upstream's aggregation layer does, after authenticating and
// authorizing the request itself. It takes the group/version over from
// a resource this server serves (metrics.k8s.io) while it is set.
type RemoteAPI struct {
	GroupVersion schema.GroupVersion
	// GroupPriorityMinimum and VersionPriority order the group among
	// the groups and the version within it in discovery, as the
	// APIService says.
	GroupPriorityMinimum, VersionPriority int32
	// Available is the APIService's Available condition: while false,
	// requests are refused with 503 and not tried.
	Available bool
	// Host is the host (and port) the requests are addressed to:
	// <service>.<namespace>.svc:<port>, the name its serving
	// certificate is verified for.
	Host string
	// Transport carries the requests: TLS verified against the
	// APIService's caBundle, presenting the front-proxy client
	// certificate, dialing an endpoint of the service.
	Transport http.RoundTripper
	// Resources is the group/version's resource list as last fetched
	// from the server, for discovery; nil when it has not answered.
	Resources *metav1.APIResourceList
}

// remoteAPIs is the set of RemoteAPIs in force; SetRemoteAPIs replaces it
// whole, so that a request reads it without a lock.
type remoteAPIs struct {
	byGV map[schema.GroupVersion]*remoteAPI

	// v3Index is the OpenAPI v3 index with the remote group/versions in,
	// made for the local documents of v3For.
	v3Mu    sync.Mutex
	v3For   *openAPIDoc
	v3Index *openAPIBlob
}

// openAPIIndex returns the OpenAPI v3 index of the local documents d and
// the remote group/versions, whose documents their servers serve (without
// a hash: they may change at any time).
func (rs *remoteAPIs) openAPIIndex(d *openAPIDoc) *openAPIBlob {
	rs.v3Mu.Lock()
	defer rs.v3Mu.Unlock()
	if rs.v3For == d && rs.v3Index != nil {
		return rs.v3Index
	}
	paths := map[string]any{}
	for gv, b := range d.v3 {
		paths[gv] = map[string]string{"serverRelativeURL": openAPIV3URL(gv, b)}
	}
	for gv := range rs.byGV {
		p := "apis/" + gv.Group + "/" + gv.Version
		paths[p] = map[string]string{"serverRelativeURL": "/openapi/v3/" + p}
	}
	index, err := json.Marshal(map[string]any{"paths": paths})
	if err != nil {
		return d.v3Index
	}
	rs.v3For, rs.v3Index = d, newOpenAPIBlob(index, nil)
	return rs.v3Index
}

// remoteAPI is a RemoteAPI with its proxy.
type remoteAPI struct {
	RemoteAPI
	proxy *httputil.ReverseProxy
}

// SetRemoteAPIs replaces the group/versions proxied to other servers.
func (s *Server) SetRemoteAPIs(apis []RemoteAPI) {
	next := &remoteAPIs{byGV: make(map[schema.GroupVersion]*remoteAPI, len(apis))}
	for _, a := range apis {
		ra := &remoteAPI{RemoteAPI: a}
		ra.proxy = &httputil.ReverseProxy{
			Rewrite:       ra.rewrite,
			Transport:     a.Transport,
			FlushInterval: -1, // watches stream
			ErrorHandler:  remoteError,
		}
		next.byGV[a.GroupVersion] = ra
	}
	s.remote.Store(next)
	s.rebuildDiscovery()
}

// remoteFor returns the remote API that serves the request's
// group/version, or nil.
func (s *Server) remoteFor(info requestInfo) *remoteAPI {
	if info.group == "" {
		return nil
	}
	rs := s.remote.Load()
	if rs == nil {
		return nil
	}
	return rs.byGV[schema.GroupVersion{Group: info.group, Version: info.version}]
}

// serveRemote proxies an authorized request to the server of its
// group/version.
func (s *Server) serveRemote(w http.ResponseWriter, r *http.Request, ra *remoteAPI) {
	if !ra.Available {
		writeError(w, r, serviceUnavailable(fmt.Sprintf("the server for %s is not available", ra.GroupVersion)))
		return
	}
	u, _ := UserFrom(r.Context())
	r = r.WithContext(context.WithValue(r.Context(), remoteUserKey{}, u))
	ra.proxy.ServeHTTP(w, r)
}

type remoteUserKey struct{}

// rewrite addresses the request to the remote server and says who makes
// it: the user this server authenticated (after impersonation), in the
// X-Remote-* headers that the front-proxy client certificate vouches
// for. Whatever the client said of itself goes: its credentials, its
// impersonation headers and any X-Remote-* header of its own.
func (ra *remoteAPI) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(&url.URL{Scheme: "https", Host: ra.Host})
	pr.Out.URL.Path, pr.Out.URL.RawPath = pr.In.URL.Path, pr.In.URL.RawPath
	h := pr.Out.Header
	for k := range h {
		if k == "Authorization" || strings.HasPrefix(k, "Impersonate-") || strings.HasPrefix(k, "X-Remote-") {
			delete(h, k)
		}
	}
	u, _ := pr.In.Context().Value(remoteUserKey{}).(*User)
	if u == nil {
		return
	}
	SetRemoteUser(h, u)
}

// SetRemoteUser writes u into h as upstream's request-header
// authentication reads it: X-Remote-User, X-Remote-Uid, one
// X-Remote-Group per group and X-Remote-Extra-<key> per extra value
// (the key percent-encoded).
func SetRemoteUser(h http.Header, u *User) {
	h.Set("X-Remote-User", u.Name)
	if u.UID != "" {
		h.Set("X-Remote-Uid", u.UID)
	}
	for _, g := range u.Groups {
		h.Add("X-Remote-Group", g)
	}
	for k, vs := range u.Extra {
		key := "X-Remote-Extra-" + url.PathEscape(k)
		for _, v := range vs {
			h.Add(key, v)
		}
	}
}

// remoteError answers a request the remote server could not be reached
// for, as upstream's aggregator does: 503.
func remoteError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return // the client went
	}
	writeError(w, r, serviceUnavailable(fmt.Sprintf("error trying to reach service: %v", err)))
}

func serviceUnavailable(msg string) error {
	return apierrors.NewServiceUnavailable(msg)
}

// rebuildDiscovery makes the discovery documents again from the served
// resources (built-in and extensions) and the remote APIs.
func (s *Server) rebuildDiscovery() {
	s.discoMu.Lock()
	defer s.discoMu.Unlock()
	all := slices.Clip(s.cfg.Resources)
	if ext := s.ext.Load(); ext != nil {
		for _, k := range sortedKeys(ext.byKey) {
			for _, sv := range ext.byKey[k] {
				all = append(all, sv.res)
			}
		}
	}
	var remote []RemoteAPI
	if rs := s.remote.Load(); rs != nil {
		for _, ra := range rs.byGV {
			remote = append(remote, ra.RemoteAPI)
		}
	}
	s.disco.Store(newDiscovery(all, remote, s.cfg.ExternalAddress))
}

// localResources returns resources without those of a group/version
// that a remote API serves.
func localResources(resources []*registry.Resource, remote []RemoteAPI) []*registry.Resource {
	if len(remote) == 0 {
		return resources
	}
	taken := map[schema.GroupVersion]bool{}
	for _, r := range remote {
		taken[r.GroupVersion] = true
	}
	out := make([]*registry.Resource, 0, len(resources))
	for _, res := range resources {
		if res != nil && !taken[res.GroupVersion] {
			out = append(out, res)
		}
	}
	return out
}

// LocalGroupVersions returns the group/versions this server serves
// itself, built in and added by Extend, whether or not a remote API has
// taken one over.
func (s *Server) LocalGroupVersions() []schema.GroupVersion {
	seen := map[schema.GroupVersion]bool{}
	var out []schema.GroupVersion
	add := func(res *registry.Resource) {
		if res != nil && !seen[res.GroupVersion] {
			seen[res.GroupVersion] = true
			out = append(out, res.GroupVersion)
		}
	}
	for _, res := range s.cfg.Resources {
		add(res)
	}
	if ext := s.ext.Load(); ext != nil {
		for _, sv := range ext.resources {
			add(sv.res)
		}
	}
	slices.SortFunc(out, func(a, b schema.GroupVersion) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// OnExtend has f called after every Extend that changed what is served.
func (s *Server) OnExtend(f func()) {
	s.extMu.Lock()
	defer s.extMu.Unlock()
	s.onExtend = append(s.onExtend, f)
}
