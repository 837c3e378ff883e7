package apiserver

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestForbiddenMessage(t *testing.T) {
	u := &User{Name: "system:serviceaccount:ns1:app"}
	for _, tc := range []struct {
		a      Attributes
		reason string
		want   string
	}{
		{Attributes{User: u, Verb: "list", Resource: "secrets", Namespace: "ns1", ResourceRequest: true}, "",
			`User "system:serviceaccount:ns1:app" cannot list resource "secrets" in API group "" in the namespace "ns1"`},
		{Attributes{User: u, Verb: "delete", Resource: "nodes", Name: "n1", ResourceRequest: true}, "",
			`User "system:serviceaccount:ns1:app" cannot delete resource "nodes" in API group "" at the cluster scope`},
		{Attributes{User: u, Verb: "update", APIGroup: "apps", Resource: "deployments", Subresource: "scale", Namespace: "ns1", ResourceRequest: true},
			`RBAC: clusterrole.rbac.authorization.k8s.io "x" not found`,
			`User "system:serviceaccount:ns1:app" cannot update resource "deployments/scale" in API group "apps" in the namespace "ns1": RBAC: clusterrole.rbac.authorization.k8s.io "x" not found`},
		{Attributes{User: u, Verb: "get", Path: "/metrics"}, "", `User "system:serviceaccount:ns1:app" cannot get path "/metrics"`},
	} {
		if got := forbiddenMessage(tc.a, tc.reason); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

// A list or watch that selects one name by metadata.name is authorized
// as a request for that name, as upstream's RequestInfo has it; a get
// keeps its own name, and a selector on anything else names nothing.
func TestRequestAttributesSelectedName(t *testing.T) {
	for _, c := range []struct{ target, verb, name string }{
		{"/api/v1/namespaces/kube-system/configmaps?fieldSelector=metadata.name%3Dext", "list", "ext"},
		{"/api/v1/namespaces/kube-system/configmaps?watch=true&fieldSelector=metadata.name%3Dext", "watch", "ext"},
		{"/api/v1/namespaces/kube-system/configmaps?fieldSelector=metadata.name%3Dext,metadata.namespace%3Dkube-system", "list", "ext"},
		{"/api/v1/namespaces/kube-system/configmaps?fieldSelector=metadata.name!%3Dext", "list", ""},
		{"/api/v1/namespaces/kube-system/configmaps?fieldSelector=metadata.namespace%3Dkube-system", "list", ""},
		{"/api/v1/namespaces/kube-system/configmaps?fieldSelector=metadata.name%3D..", "list", ""},
		{"/api/v1/namespaces/kube-system/configmaps?fieldSelector=(", "list", ""},
		{"/api/v1/namespaces/kube-system/configmaps/a?fieldSelector=metadata.name%3Db", "get", "a"},
	} {
		r := httptest.NewRequest(http.MethodGet, c.target, nil)
		a := requestAttributes(r, &User{Name: "u"}, parseRequest(r))
		if a.Verb != c.verb || a.Name != c.name {
			t.Errorf("%s: verb %q name %q, want %q %q", c.target, a.Verb, a.Name, c.verb, c.name)
		}
	}
}

// A list's or watch's field selector reaches the authorizer (the Node
// authorizer lets a node list its own PodCertificateRequests); a get's
// and a selector that does not parse do not.
func TestRequestAttributesFieldSelector(t *testing.T) {
	for _, c := range []struct{ target, want string }{
		{"/apis/certificates.k8s.io/v1/podcertificaterequests?fieldSelector=spec.nodeName%3Da", "spec.nodeName=a"},
		{"/apis/certificates.k8s.io/v1/podcertificaterequests?watch=true&fieldSelector=spec.nodeName%3Da,spec.signerName%3Dx.io%2Fy", "spec.nodeName=a,spec.signerName=x.io/y"},
		{"/apis/certificates.k8s.io/v1/podcertificaterequests", ""},
		{"/apis/certificates.k8s.io/v1/podcertificaterequests?fieldSelector=(", ""},
		{"/apis/certificates.k8s.io/v1/namespaces/team/podcertificaterequests/r?fieldSelector=spec.nodeName%3Da", ""},
	} {
		r := httptest.NewRequest(http.MethodGet, c.target, nil)
		a := requestAttributes(r, &User{Name: "u"}, parseRequest(r))
		got := ""
		if a.FieldSelector != nil {
			got = a.FieldSelector.String()
		}
		if got != c.want {
			t.Errorf("%s: field selector %q, want %q", c.target, got, c.want)
		}
	}
}
