package flowcontrol

import (
	"testing"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	"k8s.io/apimachinery/pkg/types"

	fcregistry "github.com/skiff-io/skiff/internal/registry/flowcontrol"
)

// bootstrapController is a controller configured with upstream's mandatory
// and suggested objects, as stored (with UIDs).
func bootstrapController(t testing.TB) *Controller {
	t.Helper()
	c := New(Config{})
	pls := append(fcregistry.MandatoryPriorityLevels(), fcregistry.SuggestedPriorityLevels()...)
	fss := append(fcregistry.MandatoryFlowSchemas(), fcregistry.SuggestedFlowSchemas()...)
	for _, pl := range pls {
		pl.UID = types.UID("pl-" + pl.Name)
	}
	for _, fs := range fss {
		fs.UID = types.UID("fs-" + fs.Name)
	}
	c.Configure(pls, fss)
	return c
}

var (
	admin     = Request{User: "admin", Groups: []string{"system:masters", "system:authenticated"}}
	loopback  = Request{User: "system:apiserver", Groups: []string{"system:masters", "system:authenticated"}}
	node      = Request{User: "system:node:n1", Groups: []string{"system:nodes", "system:authenticated"}}
	scheduler = Request{User: "system:kube-scheduler", Groups: []string{"system:authenticated"}}
	kcm       = Request{User: "system:kube-controller-manager", Groups: []string{"system:authenticated"}}
	alice     = Request{User: "alice", Groups: []string{"dev", "system:authenticated"}}
	anonymous = Request{User: "system:anonymous", Groups: []string{"system:unauthenticated"}}
)

func serviceAccount(ns, name string) Request {
	return Request{User: "system:serviceaccount:" + ns + ":" + name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
}

func resource(who Request, verb, group, ns, res, sub string) Request {
	who.IsResource, who.Verb, who.APIGroup, who.Namespace, who.Resource, who.Subresource = true, verb, group, ns, res, sub
	return who
}

func path(who Request, verb, p string) Request {
	who.Verb, who.Path = verb, p
	return who
}

func TestClassify(t *testing.T) {
	c := bootstrapController(t)
	tests := []struct {
		name       string
		req        Request
		fs, pl     string
		flow       string // the flow distinguisher
		wantExempt bool
	}{
		{"admin", resource(admin, "list", "", "default", "pods", ""), "exempt", "exempt", "", true},
		{"skiff's own components", resource(loopback, "create", "", "bench", "pods", "binding"), "exempt", "exempt", "", true},
		{"admin's metrics", path(admin, "get", "/metrics"), "exempt", "exempt", "", true},
		{"node status", resource(node, "patch", "", "", "nodes", "status"), "system-node-high", "node-high", "system:node:n1", false},
		{"node heartbeat", resource(node, "update", "coordination.k8s.io", "kube-node-lease", "leases", ""), "system-node-high", "node-high", "system:node:n1", false},
		{"node reads its pods", resource(node, "list", "", "", "pods", ""), "system-nodes", "system", "system:node:n1", false},
		{"node's pod status", resource(node, "patch", "", "default", "pods", "status"), "system-nodes", "system", "system:node:n1", false},
		{"scheduler's lease", resource(scheduler, "update", "coordination.k8s.io", "kube-system", "leases", ""), "system-leader-election", "leader-election", "system:kube-scheduler", false},
		{"scheduler binds", resource(scheduler, "create", "", "default", "pods", "binding"), "kube-scheduler", "workload-high", "default", false},
		{"controller manager's endpoints", resource(kcm, "update", "", "default", "endpoints", ""), "endpoint-controller", "workload-high", "system:kube-controller-manager", false},
		{"controller manager lists nodes", resource(kcm, "list", "", "", "nodes", ""), "kube-controller-manager", "workload-high", "", false},
		{"endpoint controller's account", resource(serviceAccount("kube-system", "endpoint-controller"), "get", "", "x", "endpoints", ""), "endpoint-controller", "workload-high", "system:serviceaccount:kube-system:endpoint-controller", false},
		{"a kube-system account's configmap lock", resource(serviceAccount("kube-system", "foo"), "update", "", "kube-system", "configmaps", ""), "workload-leader-election", "leader-election", "system:serviceaccount:kube-system:foo", false},
		{"a kube-system account deletes", resource(serviceAccount("kube-system", "foo"), "delete", "", "kube-system", "configmaps", ""), "kube-system-service-accounts", "workload-high", "kube-system", false},
		{"another account", resource(serviceAccount("apps", "web"), "list", "", "apps", "pods", ""), "service-accounts", "workload-low", "system:serviceaccount:apps:web", false},
		{"a user", resource(alice, "list", "", "", "pods", ""), "global-default", "global-default", "alice", false},
		{"a user's discovery", path(alice, "get", "/apis"), "global-default", "global-default", "alice", false},
		{"a user's probe", path(alice, "get", "/readyz"), "probes", "exempt", "", true},
		{"a user's probe write", path(alice, "post", "/readyz"), "global-default", "global-default", "alice", false},
		{"anonymous", path(anonymous, "get", "/version"), "global-default", "global-default", "system:anonymous", false},
		{"anonymous probe", path(anonymous, "get", "/livez"), "probes", "exempt", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := c.Classify(&tt.req)
			if cl.FlowSchema() != tt.fs || cl.PriorityLevel() != tt.pl {
				t.Fatalf("classified as %s/%s, want %s/%s", cl.FlowSchema(), cl.PriorityLevel(), tt.fs, tt.pl)
			}
			if cl.Exempt() != tt.wantExempt {
				t.Errorf("exempt = %v, want %v", cl.Exempt(), tt.wantExempt)
			}
			if got := cl.fs.flow(&tt.req); got != tt.flow {
				t.Errorf("flow %q, want %q", got, tt.flow)
			}
			fsUID, plUID := cl.Headers()
			if len(fsUID) != 1 || fsUID[0] != "fs-"+tt.fs || len(plUID) != 1 || plUID[0] != "pl-"+tt.pl {
				t.Errorf("headers %v %v, want the objects' UIDs", fsUID, plUID)
			}
		})
	}
}

// Before the stored objects are known, the mandatory ones are in force:
// system:masters is exempt and everyone else is in catch-all, without
// response headers (nothing is stored to name).
func TestClassifyMandatoryOnly(t *testing.T) {
	c := New(Config{})
	for _, tt := range []struct {
		req    Request
		fs     string
		exempt bool
	}{
		{resource(admin, "get", "", "default", "pods", ""), "exempt", true},
		{resource(alice, "get", "", "default", "pods", ""), "catch-all", false},
		{resource(Request{User: "nobody"}, "get", "", "default", "pods", ""), "catch-all", false}, // matches nothing: catch-all
	} {
		cl := c.Classify(&tt.req)
		if cl.FlowSchema() != tt.fs || cl.Exempt() != tt.exempt {
			t.Errorf("%s: classified as %s (exempt %v), want %s (exempt %v)", tt.req.User, cl.FlowSchema(), cl.Exempt(), tt.fs, tt.exempt)
		}
		if fsUID, plUID := cl.Headers(); fsUID != nil || plUID != nil {
			t.Errorf("%s: headers %v %v for objects not stored", tt.req.User, fsUID, plUID)
		}
	}
}

func TestPrecedenceAndDangling(t *testing.T) {
	c := New(Config{})
	level := func(name string) *flowcontrolv1.PriorityLevelConfiguration {
		pl := fcregistry.SuggestedPriorityLevels()[0].DeepCopy()
		pl.Name = name
		return pl
	}
	schema := func(name, pl string, precedence int32, user string) *flowcontrolv1.FlowSchema {
		fs := fcregistry.SuggestedFlowSchemas()[0].DeepCopy()
		fs.Name, fs.Spec.PriorityLevelConfiguration.Name, fs.Spec.MatchingPrecedence = name, pl, precedence
		fs.Spec.Rules = []flowcontrolv1.PolicyRulesWithSubjects{{
			Subjects: []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: user}}},
			ResourceRules: []flowcontrolv1.ResourcePolicyRule{{Verbs: []string{"*"}, APIGroups: []string{"*"},
				Resources: []string{"pods"}, Namespaces: []string{"*"}}},
		}}
		return fs
	}
	fss := []*flowcontrolv1.FlowSchema{
		schema("b", "one", 500, "alice"),
		schema("a", "two", 500, "alice"),        // same precedence: "a" before "b"
		schema("first", "missing", 10, "alice"), // dangling: never matches
		schema("later", "one", 600, "*"),
	}
	updates := c.Configure([]*flowcontrolv1.PriorityLevelConfiguration{level("one"), level("two")}, fss)
	for _, tt := range []struct {
		req    Request
		fs, pl string
	}{
		{resource(alice, "get", "", "ns", "pods", ""), "a", "two"},
		{resource(alice, "get", "", "", "pods", ""), "catch-all", "catch-all"}, // cluster scope not in the rules
		{resource(alice, "get", "", "ns", "pods", "log"), "catch-all", "catch-all"},
		{resource(Request{User: "bob"}, "get", "", "ns", "pods", ""), "later", "one"},
	} {
		cl := c.Classify(&tt.req)
		if cl.FlowSchema() != tt.fs || cl.PriorityLevel() != tt.pl {
			t.Errorf("%+v: classified as %s/%s, want %s/%s", tt.req, cl.FlowSchema(), cl.PriorityLevel(), tt.fs, tt.pl)
		}
	}
	dangling := map[string]flowcontrolv1.ConditionStatus{}
	for _, u := range updates {
		for _, cond := range u.Status.Conditions {
			if cond.Type == flowcontrolv1.FlowSchemaConditionDangling {
				dangling[u.Name] = cond.Status
			}
		}
	}
	want := map[string]flowcontrolv1.ConditionStatus{"a": "False", "b": "False", "first": "True", "later": "False"}
	for name, status := range want {
		if dangling[name] != status {
			t.Errorf("flowschema %s: Dangling %q, want %q (updates %v)", name, dangling[name], status, dangling)
		}
	}
	// Once written, the conditions need no more updates.
	for i, fs := range fss {
		for _, u := range updates {
			if u.Name == fs.Name {
				fss[i] = u
			}
		}
	}
	if again := c.Configure([]*flowcontrolv1.PriorityLevelConfiguration{level("one"), level("two")}, fss); len(again) != 0 {
		t.Errorf("%d status updates after they were written, want none", len(again))
	}
}

func TestRuleMatching(t *testing.T) {
	for _, tt := range []struct {
		name string
		rule flowcontrolv1.PolicyRulesWithSubjects
		req  Request
		want bool
	}{
		{"group star matches anyone", rules(groupSubject("*"), pods("get")), resource(alice, "get", "", "ns", "pods", ""), true},
		{"verb differs", rules(groupSubject("dev"), pods("get")), resource(alice, "list", "", "ns", "pods", ""), false},
		{"subresource named", rules(groupSubject("dev"), pods("get", "pods/log")), resource(alice, "get", "", "ns", "pods", "log"), true},
		{"subresource not named", rules(groupSubject("dev"), pods("get", "pods")), resource(alice, "get", "", "ns", "pods", "log"), false},
		{"service account by name", rules(saSubject("apps", "web"), pods("get")), resource(serviceAccount("apps", "web"), "get", "", "ns", "pods", ""), true},
		{"service account other namespace", rules(saSubject("apps", "*"), pods("get")), resource(serviceAccount("other", "web"), "get", "", "ns", "pods", ""), false},
		{"user is not a service account", rules(saSubject("apps", "*"), pods("get")), resource(Request{User: "system:serviceaccount:apps"}, "get", "", "ns", "pods", ""), false},
		{"url prefix", rules(groupSubject("dev"), urls("get", "/healthz/*")), path(alice, "get", "/healthz/etcd"), true},
		{"url prefix is not the path", rules(groupSubject("dev"), urls("get", "/healthz/*")), path(alice, "get", "/healthzz"), false},
		{"resource rule ignores paths", rules(groupSubject("dev"), pods("get")), path(alice, "get", "/api"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := rulesMatch(&tt.rule, &tt.req); got != tt.want {
				t.Errorf("match = %v, want %v", got, tt.want)
			}
		})
	}
}

func rules(s flowcontrolv1.Subject, r any) flowcontrolv1.PolicyRulesWithSubjects {
	out := flowcontrolv1.PolicyRulesWithSubjects{Subjects: []flowcontrolv1.Subject{s}}
	switch r := r.(type) {
	case flowcontrolv1.ResourcePolicyRule:
		out.ResourceRules = append(out.ResourceRules, r)
	case flowcontrolv1.NonResourcePolicyRule:
		out.NonResourceRules = append(out.NonResourceRules, r)
	}
	return out
}

func groupSubject(name string) flowcontrolv1.Subject {
	return flowcontrolv1.Subject{Kind: flowcontrolv1.SubjectKindGroup, Group: &flowcontrolv1.GroupSubject{Name: name}}
}

func saSubject(ns, name string) flowcontrolv1.Subject {
	return flowcontrolv1.Subject{Kind: flowcontrolv1.SubjectKindServiceAccount, ServiceAccount: &flowcontrolv1.ServiceAccountSubject{Namespace: ns, Name: name}}
}

func pods(verb string, resources ...string) flowcontrolv1.ResourcePolicyRule {
	if len(resources) == 0 {
		resources = []string{"pods"}
	}
	return flowcontrolv1.ResourcePolicyRule{Verbs: []string{verb}, APIGroups: []string{""}, Resources: resources, Namespaces: []string{"*"}}
}

func urls(verb string, paths ...string) flowcontrolv1.NonResourcePolicyRule {
	return flowcontrolv1.NonResourcePolicyRule{Verbs: []string{verb}, NonResourceURLs: paths}
}

// Classifying an exempt request allocates nothing: it is on the path of
// every request of the server's own components.
func TestClassifyExemptAllocs(t *testing.T) {
	c := bootstrapController(t)
	req := resource(loopback, "create", "", "bench", "pods", "binding")
	allocs := testing.AllocsPerRun(100, func() {
		cl := c.Classify(&req)
		if !cl.Exempt() {
			t.Fatal("not exempt")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per exempt classification, want 0", allocs)
	}
}

func BenchmarkClassify(b *testing.B) {
	c := New(Config{})
	pls := append(fcregistry.MandatoryPriorityLevels(), fcregistry.SuggestedPriorityLevels()...)
	fss := append(fcregistry.MandatoryFlowSchemas(), fcregistry.SuggestedFlowSchemas()...)
	c.Configure(pls, fss)
	for _, bc := range []struct {
		name string
		req  Request
	}{
		{"exempt", resource(loopback, "create", "", "bench", "pods", "binding")},
		{"global-default", resource(alice, "get", "", "default", "pods", "")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cl := c.Classify(&bc.req)
				_, _ = cl.Headers()
			}
		})
	}
}
