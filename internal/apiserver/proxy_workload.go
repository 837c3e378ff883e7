package apiserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-io/skiff/internal/storage"
)

// The pods/proxy and services/proxy subresources, which `kubectl proxy`,
// dashboards and Prometheus use to reach workloads through the API:
//
//	/api/v1/namespaces/{ns}/pods/{[scheme:]name[:port]}/proxy/{path}
//	/api/v1/namespaces/{ns}/services/{[scheme:]name[:port]}/proxy/{path}
//
// The request goes, without the client's credentials, to the pod's IP
// (the port named, else the first container port, else 80), or to a ready
// endpoint of the Service port named (by name or number; the only port
// when none is named). scheme is http or https; an https backend is not
// verified, as upstream's proxy does not verify it either.

var (
	servicesGVR  = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	endpointsGVR = schema.GroupVersionResource{Version: "v1", Resource: "endpoints"}
)

// workloadTransport carries pods/proxy and services/proxy requests.
var workloadTransport = &http.Transport{
	DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	TLSClientConfig:       &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as upstream: pods' certificates are not verified
	MaxIdleConnsPerHost:   10,
	IdleConnTimeout:       90 * time.Second,
	ResponseHeaderTimeout: 60 * time.Second,
}

// splitSchemeNamePort reads "[scheme:]name[:port]" as upstream does; ok
// is false for more than three parts, an empty name or an unknown scheme.
func splitSchemeNamePort(id string) (scheme, name, port string, ok bool) {
	parts := strings.Split(id, ":")
	switch len(parts) {
	case 1:
		name = parts[0]
	case 2:
		name, port = parts[0], parts[1]
	case 3:
		scheme, name, port = parts[0], parts[1], parts[2]
	default:
		return "", "", "", false
	}
	if scheme == "" {
		scheme = "http"
	}
	return scheme, name, port, name != "" && (scheme == "http" || scheme == "https")
}

// servePodProxy serves pods/{id}/proxy/{path}.
func (s *Server) servePodProxy(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	scheme, name, port, ok := splitSchemeNamePort(info.name)
	if !ok {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid pod request %q", info.name))
	}
	pod := &corev1.Pod{}
	if err := sv.store.Get(r.Context(), sv.key(info.namespace, name), "", pod); err != nil {
		return storageError(err, sv.groupResource(), name)
	}
	if port == "" {
		for _, c := range pod.Spec.Containers {
			if len(c.Ports) > 0 {
				port = strconv.Itoa(int(c.Ports[0].ContainerPort))
				break
			}
		}
	}
	if port == "" {
		port = "80"
	}
	if pod.Status.PodIP == "" {
		return apierrors.NewServiceUnavailable(fmt.Sprintf("pod %s has no IP address yet", name))
	}
	return s.proxyToWorkload(w, r, info, scheme, pod.Status.PodIP, port, "pods", fmt.Sprintf("pod %s", name))
}

// serveServiceProxy serves services/{id}/proxy/{path}.
func (s *Server) serveServiceProxy(w http.ResponseWriter, r *http.Request, info requestInfo, sv *served) error {
	scheme, name, portID, ok := splitSchemeNamePort(info.name)
	if !ok {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid service request %q", info.name))
	}
	svc := &corev1.Service{}
	if err := sv.store.Get(r.Context(), sv.key(info.namespace, name), "", svc); err != nil {
		return storageError(err, sv.groupResource(), name)
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if (portID == "" && len(svc.Spec.Ports) == 1) || (portID != "" && (p.Name == portID || strconv.Itoa(int(p.Port)) == portID)) {
			sp = p
			break
		}
	}
	if sp == nil {
		return apierrors.NewServiceUnavailable(fmt.Sprintf("no service port %q found for service %q", portID, name))
	}
	esv, ok := s.lookup(endpointsGVR)
	if !ok {
		return apierrors.NewServiceUnavailable("endpoints are not served")
	}
	eps := &corev1.Endpoints{}
	if err := esv.store.Get(r.Context(), esv.key(info.namespace, name), "", eps); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storageError(err, esv.groupResource(), name)
	}
	type backend struct{ ip, port string }
	var ready []backend
	for _, ss := range eps.Subsets {
		for _, p := range ss.Ports {
			if p.Name != sp.Name {
				continue
			}
			for _, a := range ss.Addresses {
				ready = append(ready, backend{a.IP, strconv.Itoa(int(p.Port))})
			}
		}
	}
	if len(ready) == 0 {
		return apierrors.NewServiceUnavailable(fmt.Sprintf("no endpoints available for service %q", name))
	}
	b := ready[rand.IntN(len(ready))]
	return s.proxyToWorkload(w, r, info, scheme, b.ip, b.port, "services", fmt.Sprintf("service %s", name))
}

// proxyToWorkload sends the request to scheme://ip:port with the path
// that follows {resource}/{id}/proxy, and its answer back as it comes.
// Only addresses a pod or endpoint may have are reached: not loopback,
// link-local or unspecified ones, which would reach the server's host.
func (s *Server) proxyToWorkload(w http.ResponseWriter, r *http.Request, info requestInfo, scheme, ip, port, resource, what string) error {
	addr, err := netip.ParseAddr(ip)
	if err != nil || addr.IsLoopback() || addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() || addr.IsUnspecified() || addr.IsMulticast() {
		return apierrors.NewBadRequest(fmt.Sprintf("address not allowed: %s of %s", ip, what))
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid port %q for %s", port, what))
	}
	if redirectToProxyRoot(w, r) {
		return nil
	}
	host := net.JoinHostPort(addr.String(), port)
	marker := "/" + resource + "/" + info.name + "/proxy"
	prefix := r.URL.Path
	if i := strings.Index(prefix, marker); i >= 0 {
		prefix = prefix[:i+len(marker)]
	}
	rt := &linkRewriter{prefix: prefix, clientHost: r.Host, next: workloadTransport}
	return s.reverseProxy(w, r, scheme, host, proxySubPath(r.URL.Path, resource, info.name), rt, what)
}

// reverseProxy sends r to scheme://host/path with its query, without the
// client's credentials, and the answer back as it is, flushed as it
// arrives; it ends when the server drains. An unreachable backend is a
// 503 naming what.
func (s *Server) reverseProxy(w http.ResponseWriter, r *http.Request, scheme, host, path string, transport http.RoundTripper, what string) error {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = scheme
			pr.Out.URL.Host = host
			pr.Out.URL.Path = path
			pr.Out.URL.RawPath = ""
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			pr.Out.Host = host
			pr.Out.Header = forwardHeader(pr.Out.Header)
		},
		Transport:     transport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, r, apierrors.NewServiceUnavailable(fmt.Sprintf("error trying to reach %s: %v", what, err)))
		},
	}
	ctx, cancel := s.untilShutdown(r.Context())
	defer cancel()
	rp.ServeHTTP(w, r.WithContext(ctx))
	return nil
}

// proxySubPath is the backend path of a {resource}/{name}/proxy request:
// what follows ".../proxy", "/" when nothing does. A trailing slash is
// kept.
func proxySubPath(requestPath, resource, name string) string {
	marker := "/" + resource + "/" + name + "/proxy"
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
