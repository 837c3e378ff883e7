package apiserver

import "testing"

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
