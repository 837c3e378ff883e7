package apiserver

import (
	"crypto/tls"
	"crypto/x509"
	"net/http/httptest"
	"testing"
)

// Anonymous authenticates only credential-free reads of its paths.
func TestAnonymousOnlyOnItsPaths(t *testing.T) {
	const path = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
	a := Anonymous{Paths: []string{path}}
	withCert := httptest.NewRequest("GET", path, nil)
	withCert.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{}}}
	withToken := httptest.NewRequest("GET", path, nil)
	withToken.Header.Set("Authorization", "Bearer x")
	check := func(name string, ok bool, want bool) {
		if ok != want {
			t.Errorf("%s: authenticated %v, want %v", name, ok, want)
		}
	}
	u, ok, err := a.AuthenticateRequest(httptest.NewRequest("GET", path, nil))
	if err != nil || !ok || u.Name != "system:anonymous" || len(u.Groups) != 1 || u.Groups[0] != "system:unauthenticated" {
		t.Fatalf("GET %s without credentials: %+v %v %v, want system:anonymous in system:unauthenticated", path, u, ok, err)
	}
	_, ok, _ = a.AuthenticateRequest(httptest.NewRequest("HEAD", path, nil))
	check("HEAD", ok, true)
	_, ok, _ = a.AuthenticateRequest(httptest.NewRequest("PUT", path, nil))
	check("PUT", ok, false)
	_, ok, _ = a.AuthenticateRequest(httptest.NewRequest("GET", "/api/v1/namespaces/kube-public/configmaps", nil))
	check("another path", ok, false)
	_, ok, _ = a.AuthenticateRequest(withToken)
	check("with a bearer token", ok, false)
	_, ok, _ = a.AuthenticateRequest(withCert)
	check("with a client certificate", ok, false)
}
