package rbac

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func cr(name string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
}

func nsRole(ns, name string, rules ...rbacv1.PolicyRule) *rbacv1.Role {
	return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules}
}

func crb(name, role string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}, Subjects: subjects}
}

func rb(ns, name, kind, role string, subjects ...rbacv1.Subject) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role}, Subjects: subjects}
}

func sa(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
}

func in(a Attributes, u *User, ns string) Attributes {
	a.User, a.Namespace = u, ns
	return a
}

func testAuthorizer() *Authorizer {
	a := New()
	a.Replace(
		[]*rbacv1.ClusterRole{
			cr("pod-reader", on(l(""), l("pods"), read)),
			cr("node-reader", on(l(""), l("nodes"), read)),
			cr("metrics", urls(l("/metrics"), "get")),
		},
		[]*rbacv1.Role{nsRole("ns1", "cm-writer", on(l(""), l("configmaps"), l("create")))},
		[]*rbacv1.ClusterRoleBinding{
			crb("nodes-alice", "node-reader", user("alice")),
			crb("metrics-ops", "metrics", group("ops")),
			crb("dangling", "gone", user("dan")),
			crb("sa-no-ns", "node-reader", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "x"}),
		},
		[]*rbacv1.RoleBinding{
			rb("ns1", "pods-bob", "ClusterRole", "pod-reader", user("bob")),
			rb("ns1", "cm-sa", "Role", "cm-writer", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "builder"}),
			rb("ns1", "pods-other-sa", "ClusterRole", "pod-reader", sa("ns2", "robot")),
			rb("ns1", "dangling-role", "Role", "missing", user("dan")),
		},
	)
	return a
}

func TestAuthorize(t *testing.T) {
	a := testAuthorizer()
	alice := &User{Name: "alice", Groups: l(GroupAuthenticated)}
	bob := &User{Name: "bob"}
	carol := &User{Name: "carol", Groups: l("ops")}
	builder := &User{Name: "system:serviceaccount:ns1:builder", Groups: l("system:serviceaccounts", "system:serviceaccounts:ns1")}
	robot := &User{Name: "system:serviceaccount:ns2:robot"}
	dan := &User{Name: "dan"}
	x := &User{Name: "system:serviceaccount:default:x"}
	tests := []struct {
		name       string
		req        Attributes
		allowed    bool
		wantReason string
	}{
		{"cluster binding, cluster scope", in(res("list", "", "nodes", "", ""), alice, ""), true,
			`RBAC: allowed by ClusterRoleBinding "nodes-alice" of ClusterRole "node-reader" to User "alice"`},
		{"cluster binding applies in every namespace", in(res("get", "", "nodes", "", "n"), alice, "ns9"), true,
			`RBAC: allowed by ClusterRoleBinding "nodes-alice" of ClusterRole "node-reader" to User "alice"`},
		{"other verb denied", in(res("delete", "", "nodes", "", "n"), alice, ""), false, ""},
		{"rolebinding to clusterrole in its namespace", in(res("list", "", "pods", "", ""), bob, "ns1"), true,
			`RBAC: allowed by RoleBinding "pods-bob/ns1" of ClusterRole "pod-reader" to User "bob"`},
		{"rolebinding not in other namespace", in(res("list", "", "pods", "", ""), bob, "ns2"), false, ""},
		{"rolebinding not cluster-wide", in(res("list", "", "pods", "", ""), bob, ""), false, ""},
		{"group subject", in(path("get", "/metrics"), carol, ""), true,
			`RBAC: allowed by ClusterRoleBinding "metrics-ops" of ClusterRole "metrics" to Group "ops"`},
		{"group subject other path", in(path("get", "/debug"), carol, ""), false, ""},
		{"service account defaults to binding namespace", in(res("create", "", "configmaps", "", ""), builder, "ns1"), true,
			`RBAC: allowed by RoleBinding "cm-sa/ns1" of Role "cm-writer" to ServiceAccount "builder/ns1"`},
		{"service account of another namespace", in(res("list", "", "pods", "", ""), robot, "ns1"), true,
			`RBAC: allowed by RoleBinding "pods-other-sa/ns1" of ClusterRole "pod-reader" to ServiceAccount "robot/ns2"`},
		{"service account name alone is not enough", in(res("create", "", "configmaps", "", ""), &User{Name: "builder"}, "ns1"), false, ""},
		{"cluster binding sa without namespace matches nobody", in(res("get", "", "nodes", "", ""), x, ""), false, ""},
		{"missing cluster role in reason", in(res("get", "", "pods", "", ""), dan, ""), false,
			`RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found`},
		{"missing role and cluster role in reason", in(res("get", "", "pods", "", ""), dan, "ns1"), false,
			`RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, role.rbac.authorization.k8s.io "missing" not found]`},
		{"no user", res("get", "", "pods", "", ""), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason, err := a.Authorize(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.allowed || reason != tt.wantReason {
				t.Errorf("Authorize = %v, %q; want %v, %q", ok, reason, tt.allowed, tt.wantReason)
			}
		})
	}
}

func TestUpdatesAndDeletes(t *testing.T) {
	a := testAuthorizer()
	bob := &User{Name: "bob"}
	ctx := context.Background()
	ask := func() bool {
		ok, _, _ := a.Authorize(ctx, in(res("list", "", "pods", "", ""), bob, "ns1"))
		return ok
	}
	if !ask() {
		t.Fatal("bob cannot list pods before the change")
	}
	// The binding now names someone else.
	a.PutRoleBinding(rb("ns1", "pods-bob", "ClusterRole", "pod-reader", user("eve")))
	if ask() {
		t.Fatal("bob can list pods after his binding was given to eve")
	}
	a.PutRoleBinding(rb("ns1", "pods-bob", "ClusterRole", "pod-reader", user("bob")))
	if !ask() {
		t.Fatal("bob cannot list pods after rebinding")
	}
	a.PutClusterRole(cr("pod-reader", on(l(""), l("pods"), l("get"))))
	if ask() {
		t.Fatal("bob can list pods after the role lost list")
	}
	a.DeleteClusterRole("pod-reader")
	if _, reason, _ := a.Authorize(ctx, in(res("list", "", "pods", "", ""), bob, "ns1")); reason != `RBAC: clusterrole.rbac.authorization.k8s.io "pod-reader" not found` {
		t.Fatalf("reason after deleting the role = %q", reason)
	}
	a.PutClusterRole(cr("pod-reader", on(l(""), l("pods"), read)))
	a.DeleteRoleBinding("ns1", "pods-bob")
	if ask() {
		t.Fatal("bob can list pods after his binding was deleted")
	}
	a.DeleteClusterRoleBinding("nodes-alice")
	if ok, _, _ := a.Authorize(ctx, in(res("list", "", "nodes", "", ""), &User{Name: "alice"}, "")); ok {
		t.Fatal("alice can list nodes after her binding was deleted")
	}
	a.PutRole(nsRole("ns1", "missing", on(l(""), l("pods"), l("get"))))
	if ok, _, _ := a.Authorize(ctx, in(res("get", "", "pods", "", "p"), &User{Name: "dan"}, "ns1")); !ok {
		t.Fatal("dan cannot get pods once the role his binding names exists")
	}
	a.DeleteRole("ns1", "missing")
	if ok, _, _ := a.Authorize(ctx, in(res("get", "", "pods", "", "p"), &User{Name: "dan"}, "ns1")); ok {
		t.Fatal("dan can get pods after the role was deleted")
	}
}

func TestRulesFor(t *testing.T) {
	a := testAuthorizer()
	ctx := context.Background()

	res, nonRes, incomplete, err := a.RulesFor(ctx, &User{Name: "bob", Groups: l("ops")}, "ns1")
	if err != nil || incomplete {
		t.Fatalf("RulesFor: incomplete=%v err=%v", incomplete, err)
	}
	wantRes := []authorizationv1.ResourceRule{{Verbs: read, APIGroups: l(""), Resources: l("pods")}}
	wantNonRes := []authorizationv1.NonResourceRule{{Verbs: l("get"), NonResourceURLs: l("/metrics")}}
	if d := cmp.Diff(wantRes, res); d != "" {
		t.Errorf("resource rules (-want +got):\n%s", d)
	}
	if d := cmp.Diff(wantNonRes, nonRes); d != "" {
		t.Errorf("non-resource rules (-want +got):\n%s", d)
	}

	// Outside ns1 bob has only the cluster-wide rules.
	res, _, _, _ = a.RulesFor(ctx, &User{Name: "bob"}, "ns2")
	if len(res) != 0 {
		t.Errorf("bob's rules in ns2 = %v, want none", res)
	}

	// A binding named twice through two subjects is listed once.
	a.PutClusterRoleBinding(crb("twice", "node-reader", user("zed"), group("zeds")))
	res, _, _, _ = a.RulesFor(ctx, &User{Name: "zed", Groups: l("zeds")}, "")
	if len(res) != 1 {
		t.Errorf("rules of a user named twice by one binding = %v, want one", res)
	}

	// A dangling reference makes the answer incomplete.
	_, _, incomplete, err = a.RulesFor(ctx, &User{Name: "dan"}, "ns1")
	if !incomplete || err == nil {
		t.Errorf("RulesFor with dangling bindings: incomplete=%v err=%v, want true and an error", incomplete, err)
	}
}

// TestConcurrent runs decisions while the state changes; run with -race.
func TestConcurrent(t *testing.T) {
	a := testAuthorizer()
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ {
			if ok, _, _ := a.Authorize(context.Background(), in(res("list", "", "nodes", "", ""), &User{Name: "alice"}, "")); !ok {
				errc <- errors.New("alice lost a binding that never changed")
				return
			}
		}
	}()
	for i := 0; i < 500; i++ {
		a.PutRoleBinding(rb("ns1", "pods-bob", "ClusterRole", "pod-reader", user("bob")))
		a.DeleteRoleBinding("ns1", "pods-bob")
		a.PutClusterRole(cr("pod-reader", on(l(""), l("pods"), read)))
	}
	<-done
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
}
