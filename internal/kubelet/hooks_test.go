package kubelet

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// httpGet hooks reach the pod as upstream's kubelet does: HTTPS without
// verifying the pod's certificate, the path's query kept, a Host header
// given in httpHeaders used as the request's host, and the status code
// deciding success.
func TestHookHTTP(t *testing.T) {
	var got *http.Request
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		if r.URL.Path == "/fail" {
			http.Error(w, "no", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	host, portText, _ := net.SplitHostPort(u.Host)
	port, _ := strconv.Atoi(portText)
	c := &corev1.Container{Name: "main", Ports: []corev1.ContainerPort{{Name: "https", ContainerPort: int32(port)}}}

	g := &corev1.HTTPGetAction{
		Path: "/dial?host=10.0.0.1&request=echo", Port: intstr.FromString("https"), Scheme: corev1.URISchemeHTTPS,
		HTTPHeaders: []corev1.HTTPHeader{{Name: "Host", Value: "example.test"}, {Name: "X-Test", Value: "1"}},
	}
	if msg, err := hookHTTP(context.Background(), c, g, []string{host}); err != nil {
		t.Fatalf("hook: %v (%s)", err, msg)
	}
	if got.URL.RawQuery != "host=10.0.0.1&request=echo" || got.Host != "example.test" || got.Header.Get("X-Test") != "1" {
		t.Errorf("request: query %q host %q X-Test %q", got.URL.RawQuery, got.Host, got.Header.Get("X-Test"))
	}

	g = &corev1.HTTPGetAction{Path: "fail", Port: intstr.FromInt32(int32(port)), Scheme: corev1.URISchemeHTTPS}
	if _, err := hookHTTP(context.Background(), c, g, []string{host}); err == nil {
		t.Error("a hook answered 500 succeeded")
	}
}
