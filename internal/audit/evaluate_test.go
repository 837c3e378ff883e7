package audit

import (
	"testing"
)

func TestEvaluate(t *testing.T) {
	const policy = `
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
omitManagedFields: true
rules:
- level: None
  users: ["system:kube-proxy"]
- level: None
  userGroups: ["system:nodes"]
  verbs: [get]
  resources: [{group: "", resources: [nodes]}]
- level: None
  nonResourceURLs: ["/healthz*"]
- level: Metadata
  nonResourceURLs: [/version]
- level: Metadata
  resources: [{group: "", resources: [secrets]}]
- level: Request
  resources: [{group: "", resources: ["pods/log", "pods/status"]}]
- level: RequestResponse
  omitStages: [ResponseStarted]
  omitManagedFields: false
  resources: [{group: "", resources: [configmaps], resourceNames: [special]}]
- level: Request
  resources: [{group: "", resources: ["services/*"]}]
- level: RequestResponse
  resources: [{group: "*", resources: ["*/scale"]}]
- level: Metadata
  namespaces: [kube-system]
- level: Request
  resources: [{group: apps}]
- level: RequestResponse
  resources: [{group: "rbac.authorization.k8s.io", resources: ["*"]}]
- level: None
  nonResourceURLs: ["*"]
  verbs: [post]
- level: Metadata
  nonResourceURLs: ["/metrics"]
- level: Request
  namespaces: [""]
`
	p, _, err := ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	alice := Attributes{User: "alice", Groups: []string{"dev", "system:authenticated"}, Authenticated: true}
	res := func(a Attributes, verb, group, ns, resource, sub, name string) Attributes {
		a.Verb, a.ResourceRequest, a.APIGroup, a.Namespace, a.Resource, a.Subresource, a.Name = verb, true, group, ns, resource, sub, name
		return a
	}
	path := func(a Attributes, verb, p string) Attributes {
		a.Verb, a.Path = verb, p
		return a
	}
	proxy := Attributes{User: "system:kube-proxy", Authenticated: true}
	node := Attributes{User: "system:node:n1", Groups: []string{"system:nodes"}, Authenticated: true}
	for _, tc := range []struct {
		name string
		a    Attributes
		want Level
	}{
		{"user", res(proxy, "list", "", "default", "secrets", "", ""), LevelNone},
		{"group and verb", res(node, "get", "", "", "nodes", "", "n1"), LevelNone},
		{"group, other verb", res(node, "update", "", "", "nodes", "", "n1"), LevelRequest}, // the cluster scope's rule
		{"group, other resource", res(node, "get", "", "default", "secrets", "", "s"), LevelMetadata},
		{"unauthenticated user is in no group", res(Attributes{}, "get", "", "", "nodes", "", "n1"), LevelRequest},
		{"path prefix", path(alice, "get", "/healthz/etcd"), LevelNone},
		{"path prefix, exact", path(alice, "get", "/healthz"), LevelNone},
		{"exact path", path(alice, "get", "/version"), LevelMetadata},
		{"exact path only", path(alice, "get", "/version/x"), LevelNone}, // a namespace rule is for resources
		{"resource", res(alice, "get", "", "default", "secrets", "", "s"), LevelMetadata},
		{"no rule", res(alice, "get", "", "default", "pods", "", "p"), LevelNone},
		{"resource does not match its subresources", res(alice, "get", "", "default", "secrets", "status", "s"), LevelNone},
		{"subresource", res(alice, "get", "", "default", "pods", "log", "p"), LevelRequest},
		{"other subresource", res(alice, "get", "", "default", "pods", "exec", "p"), LevelNone},
		{"resource name", res(alice, "update", "", "default", "configmaps", "", "special"), LevelRequestResponse},
		{"other name", res(alice, "update", "", "default", "configmaps", "", "plain"), LevelNone},
		{"resource/* matches subresources", res(alice, "get", "", "default", "services", "proxy", "s"), LevelRequest},
		{"resource/* matches the resource", res(alice, "get", "", "default", "services", "", "s"), LevelRequest},
		{"*/sub in any group", res(alice, "update", "apps", "default", "deployments", "scale", "d"), LevelRequestResponse},
		{"namespace", res(alice, "get", "", "kube-system", "pods", "", "p"), LevelMetadata},
		{"whole group", res(alice, "create", "apps", "default", "deployments", "", ""), LevelRequest},
		{"group must match", res(alice, "create", "batch", "default", "jobs", "", ""), LevelNone},
		{"star resources", res(alice, "list", "rbac.authorization.k8s.io", "", "clusterroles", "", ""), LevelRequestResponse},
		{"star path with verb", path(alice, "post", "/anything"), LevelNone},
		{"path", path(alice, "get", "/metrics"), LevelMetadata},
		{"a resource rule does not match a path", path(alice, "get", "/api"), LevelNone},
		{"a path rule does not match a resource", res(alice, "get", "", "default", "metrics", "", ""), LevelNone},
		{"cluster scope", res(alice, "get", "", "", "metrics", "", ""), LevelRequest},
		{"a path rule does not match a resource's path", func() Attributes {
			a := res(alice, "get", "", "default", "metrics", "", "")
			a.Path = "/metrics"
			return a
		}(), LevelNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Evaluate(&tc.a).Level; got != tc.want {
				t.Errorf("level %s, want %s", got, tc.want)
			}
		})
	}

	// The stages and managed fields of the rule that matched, with the
	// policy's.
	c := p.Evaluate(&Attributes{Verb: "update", ResourceRequest: true, Namespace: "default", Resource: "configmaps", Name: "special", Authenticated: true})
	if !c.Omits(StageRequestReceived) || !c.Omits(StageResponseStarted) || c.Omits(StageResponseComplete) || c.Omits(StagePanic) || c.OmitManagedFields {
		t.Errorf("configmap rule: %+v", c)
	}
	c = p.Evaluate(&Attributes{Verb: "get", ResourceRequest: true, Namespace: "default", Resource: "secrets", Authenticated: true})
	if !c.Omits(StageRequestReceived) || c.Omits(StageResponseStarted) || !c.OmitManagedFields {
		t.Errorf("secret rule: %+v", c)
	}
}

func TestEvaluateNoAllocs(t *testing.T) {
	p, _, err := ParsePolicy([]byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  users: [a]\n- level: Metadata\n  resources: [{resources: [\"pods/*\"]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := &Attributes{User: "b", Authenticated: true, Verb: "get", ResourceRequest: true, Resource: "pods", Subresource: "log"}
	if n := testing.AllocsPerRun(100, func() { p.Evaluate(a) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
	if p.Evaluate(a).Level != LevelMetadata {
		t.Error("pods/* does not match pods/log")
	}
}
