package apiserver

import "testing"

func TestSplitSchemeNamePort(t *testing.T) {
	tests := []struct {
		id                 string
		scheme, name, port string
		ok                 bool
	}{
		{"web", "http", "web", "", true},
		{"web:8080", "http", "web", "8080", true},
		{"web:http", "http", "web", "http", true},
		{"https:web:443", "https", "web", "443", true},
		{"http:web:", "http", "web", "", true},
		{":8080", "", "", "", false},
		{"ftp:web:21", "", "", "", false},
		{"a:b:c:d", "", "", "", false},
	}
	for _, tc := range tests {
		scheme, name, port, ok := splitSchemeNamePort(tc.id)
		if ok != tc.ok || (ok && (scheme != tc.scheme || name != tc.name || port != tc.port)) {
			t.Errorf("%q: %q %q %q %v, want %q %q %q %v", tc.id, scheme, name, port, ok, tc.scheme, tc.name, tc.port, tc.ok)
		}
	}
}

func TestProxySubPath(t *testing.T) {
	tests := []struct{ path, resource, name, want string }{
		{"/api/v1/namespaces/default/pods/web:8080/proxy/hostname", "pods", "web:8080", "/hostname"},
		{"/api/v1/namespaces/default/pods/web:8080/proxy/", "pods", "web:8080", "/"},
		{"/api/v1/namespaces/default/pods/web:8080/proxy", "pods", "web:8080", "/"},
		{"/api/v1/namespaces/default/services/web/proxy/a/b/", "services", "web", "/a/b/"},
	}
	for _, tc := range tests {
		if got := proxySubPath(tc.path, tc.resource, tc.name); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.path, got, tc.want)
		}
	}
}

// Addresses on the server's own host are refused: a pod's status (which
// a node writes) could otherwise point the API server at its loopback.
func TestProxyToWorkloadRefusesHostAddresses(t *testing.T) {
	s := &Server{}
	for _, ip := range []string{"127.0.0.1", "::1", "169.254.169.254", "0.0.0.0", "fe80::1", "not-an-ip"} {
		err := s.proxyToWorkload(nil, nil, requestInfo{}, "http", ip, "80", "pods", "pod p")
		if err == nil {
			t.Errorf("%s: allowed", ip)
		}
	}
}
