package rbac

import (
	"context"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestBootstrapMetadata(t *testing.T) {
	names := map[string]bool{}
	for _, r := range ClusterRoles() {
		names[r.Name] = true
		if r.Labels[BootstrappingLabel] != BootstrappingValue || r.Annotations[AutoUpdateAnnotation] != "true" {
			t.Errorf("ClusterRole %s: labels %v annotations %v", r.Name, r.Labels, r.Annotations)
		}
	}
	for _, b := range ClusterRoleBindings() {
		if !names[b.RoleRef.Name] {
			t.Errorf("ClusterRoleBinding %s refers to unknown ClusterRole %s", b.Name, b.RoleRef.Name)
		}
		if b.Labels[BootstrappingLabel] != BootstrappingValue || b.Annotations[AutoUpdateAnnotation] != "true" {
			t.Errorf("ClusterRoleBinding %s: labels %v annotations %v", b.Name, b.Labels, b.Annotations)
		}
	}
}

func TestBootstrapPolicy(t *testing.T) {
	ctx := context.Background()
	saGroups := l("system:serviceaccounts", "system:serviceaccounts:app", GroupAuthenticated)
	app := &User{Name: "system:serviceaccount:app:default", Groups: saGroups}
	master := &User{Name: "admin", Groups: l(SystemMasters, GroupAuthenticated)}
	anon := &User{Name: "system:anonymous", Groups: l(GroupUnauthenticated)}

	a := bootstrapped(t, nil, nil, nil)
	check := func(name string, a *Authorizer, req Attributes, want bool) {
		t.Helper()
		ok, reason, _ := a.Authorize(ctx, req)
		if ok != want {
			t.Errorf("%s: allowed=%v (%q), want %v", name, ok, reason, want)
		}
	}
	check("masters delete node", a, in(res("delete", "", "nodes", "", "n1"), master, ""), true)
	check("masters anything", a, in(res("frobnicate", "example.com", "widgets", "status", "w"), master, "x"), true)
	check("masters any url", a, in(path("post", "/debug/pprof"), master, ""), true)
	if _, reason, _ := a.Authorize(ctx, in(res("get", "", "secrets", "", "s"), master, "kube-system")); reason !=
		`RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters"` {
		t.Errorf("masters reason = %q", reason)
	}

	check("sa list secrets", a, in(res("list", "", "secrets", "", ""), app, "app"), false)
	check("sa list secrets kube-system", a, in(res("list", "", "secrets", "", ""), app, "kube-system"), false)
	check("sa delete node", a, in(res("delete", "", "nodes", "", "n1"), app, ""), false)
	check("sa bind cluster-admin", a, in(res("bind", rbacv1.GroupName, "clusterroles", "", "cluster-admin"), app, ""), false)
	check("sa discovery", a, in(path("get", "/apis/apps/v1"), app, ""), true)
	check("sa self rules review", a, in(res("create", "authorization.k8s.io", "selfsubjectrulesreviews", "", ""), app, ""), true)
	check("sa issuer discovery", a, in(path("get", "/openid/v1/jwks"), app, ""), true)
	check("sa metrics", a, in(path("get", "/metrics"), app, ""), false)
	check("anonymous healthz", a, in(path("get", "/healthz"), anon, ""), true)
	check("anonymous discovery", a, in(path("get", "/api"), anon, ""), false)
	check("scheduler binds pods", a, in(res("create", "", "pods", "binding", "p"), &User{Name: UserKubeScheduler}, "app"), true)
	check("scheduler reads secrets", a, in(res("get", "", "secrets", "", "s"), &User{Name: UserKubeScheduler}, "app"), false)
	check("scheduler own lease", a, in(res("update", "coordination.k8s.io", "leases", "", "kube-scheduler"), &User{Name: UserKubeScheduler}, "kube-system"), true)
	check("scheduler other lease", a, in(res("update", "coordination.k8s.io", "leases", "", "other"), &User{Name: UserKubeScheduler}, "kube-system"), false)
	check("system:node unbound", a, in(res("get", "", "secrets", "", "s"), &User{Name: "system:node:n1", Groups: l("system:nodes")}, "app"), false)

	// view: no secrets.
	view := bootstrapped(t, nil, nil, []*rbacv1.RoleBinding{
		rb("app", "sa-view", "ClusterRole", "view", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "default", Namespace: "app"})})
	check("view list pods", view, in(res("list", "", "pods", "", ""), app, "app"), true)
	check("view pod logs", view, in(res("get", "", "pods", "log", "p"), app, "app"), true)
	check("view list secrets", view, in(res("list", "", "secrets", "", ""), app, "app"), false)
	check("view exec", view, in(res("create", "", "pods", "exec", "p"), app, "app"), false)
	check("view other namespace", view, in(res("list", "", "pods", "", ""), app, "other"), false)
	check("view update deployment", view, in(res("update", "apps", "deployments", "", "d"), app, "app"), false)

	// edit: secrets.
	edit := bootstrapped(t, nil, nil, []*rbacv1.RoleBinding{
		rb("app", "sa-edit", "ClusterRole", "edit", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "default", Namespace: "app"})})
	check("edit list secrets", edit, in(res("list", "", "secrets", "", ""), app, "app"), true)
	check("edit update deployment scale", edit, in(res("update", "apps", "deployments", "scale", "d"), app, "app"), true)
	check("edit list pods (from view)", edit, in(res("list", "", "pods", "", ""), app, "app"), true)
	check("edit create roles", edit, in(res("create", rbacv1.GroupName, "roles", "", ""), app, "app"), false)
	check("edit secrets elsewhere", edit, in(res("list", "", "secrets", "", ""), app, "kube-system"), false)

	// admin: roles and rolebindings too, gathered through edit and view.
	admin := bootstrapped(t, nil, nil, []*rbacv1.RoleBinding{rb("app", "u-admin", "ClusterRole", "admin", user("u"))})
	u := &User{Name: "u", Groups: l(GroupAuthenticated)}
	check("admin create roles", admin, in(res("create", rbacv1.GroupName, "roles", "", ""), u, "app"), true)
	check("admin list pods", admin, in(res("list", "", "pods", "", ""), u, "app"), true)
	check("admin list secrets", admin, in(res("list", "", "secrets", "", ""), u, "app"), true)
	check("admin delete namespace", admin, in(res("delete", "", "namespaces", "", "app"), u, "app"), false)
}

func TestAggregatedRules(t *testing.T) {
	sel := func(k string) *rbacv1.AggregationRule {
		return &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{k: "true"}}}}
	}
	labelled := func(name string, lbl map[string]string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
		r := cr(name, rules...)
		r.Labels = lbl
		return r
	}
	podsGet := on(l(""), l("pods"), l("get"))
	podsList := on(l(""), l("pods"), l("list"))
	target := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "target", Labels: map[string]string{"a": "true"}},
		AggregationRule: sel("a"), Rules: []rbacv1.PolicyRule{urls(l("/stale"), "get")}}
	all := []*rbacv1.ClusterRole{
		labelled("z", map[string]string{"a": "true"}, podsList, podsGet),
		labelled("b", map[string]string{"a": "true"}, podsGet),
		labelled("c", map[string]string{"a": "false"}, urls(l("/x"), "get")),
		target,
	}
	rules, ok, err := AggregatedRules(target, all)
	if err != nil || !ok {
		t.Fatalf("AggregatedRules: ok=%v err=%v", ok, err)
	}
	// Sorted by role name, each rule once, the role itself left out.
	if want := []rbacv1.PolicyRule{podsGet, podsList}; len(rules) != 2 || !RuleAllows(res("get", "", "pods", "", ""), rules[0]) ||
		!RuleAllows(res("list", "", "pods", "", ""), rules[1]) {
		t.Errorf("rules = %v, want %v", rules, want)
	}

	if _, ok, _ := AggregatedRules(cr("plain", podsGet), all); ok {
		t.Error("a ClusterRole without aggregationRule aggregates")
	}
	none := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "none"}, AggregationRule: sel("nobody")}
	if rules, ok, _ := AggregatedRules(none, all); !ok || rules == nil || len(rules) != 0 {
		t.Errorf("no match: rules=%#v ok=%v, want an empty list", rules, ok)
	}
	bad := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, AggregationRule: &rbacv1.AggregationRule{
		ClusterRoleSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}}}}}
	if _, _, err := AggregatedRules(bad, all); err == nil {
		t.Error("an invalid selector gives no error")
	}
}

// The CSR part of the default policy: bootstrap tokens may ask for node
// client certificates and have them approved, kubelets renew their own,
// the approver roles approve only their signer, and admin, edit and view
// give nothing on CSRs, as upstream.
func TestBootstrapCSRPolicy(t *testing.T) {
	ctx := context.Background()
	token := &User{Name: "system:bootstrap:abcdef", Groups: l(GroupBootstrappers, GroupAuthenticated)}
	kubelet := &User{Name: "system:node:n1", Groups: l(GroupNodes, GroupAuthenticated)}
	approver := &User{Name: "approver", Groups: l(GroupAuthenticated)}
	nsAdmin := &User{Name: "ns-admin", Groups: l(GroupAuthenticated)}
	a := bootstrapped(t, nil,
		[]*rbacv1.ClusterRoleBinding{crb("approve-clients", "system:certificates.k8s.io:kube-apiserver-client-approver", user("approver"))},
		[]*rbacv1.RoleBinding{rb("app", "admin", "ClusterRole", "admin", user("ns-admin"))})
	csrs := func(verb, sub string) Attributes { return res(verb, certs, "certificatesigningrequests", sub, "") }
	signer := func(verb, name string) Attributes { return res(verb, certs, "signers", "", name) }
	tests := []struct {
		name string
		u    *User
		req  Attributes
		want bool
	}{
		{"token creates", token, csrs("create", ""), true},
		{"token watches", token, csrs("watch", ""), true},
		{"token gets", token, csrs("get", ""), true},
		{"token deletes", token, csrs("delete", ""), false},
		{"token approves", token, csrs("update", "approval"), false},
		{"token nodeclient", token, csrs("create", "nodeclient"), true},
		{"token selfnodeclient", token, csrs("create", "selfnodeclient"), false},
		{"kubelet selfnodeclient", kubelet, csrs("create", "selfnodeclient"), true},
		{"kubelet nodeclient", kubelet, csrs("create", "nodeclient"), false},
		// The node's own CSR reads come from the Node authorizer, which
		// uses system:node's rules; that role is bound to nobody.
		{"kubelet creates through RBAC", kubelet, csrs("create", ""), false},
		{"approver approves its signer", approver, signer("approve", SignerKubeAPIServerClient), true},
		{"approver other signer", approver, signer("approve", SignerKubeletServing), false},
		{"approver signs", approver, signer("sign", SignerKubeAPIServerClient), false},
		{"namespace admin lists CSRs", nsAdmin, csrs("list", ""), false},
		{"namespace admin approves", nsAdmin, signer("approve", SignerKubeletServing), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ok, reason, _ := a.Authorize(ctx, in(tt.req, tt.u, "")); ok != tt.want {
				t.Errorf("allowed=%v (%q), want %v", ok, reason, tt.want)
			}
		})
	}

	roles := map[string]*rbacv1.ClusterRole{}
	for _, r := range ClusterRoles() {
		roles[r.Name] = r
	}
	for name, signerName := range map[string]string{
		"system:certificates.k8s.io:legacy-unknown-approver":                SignerLegacyUnknown,
		"system:certificates.k8s.io:kubelet-serving-approver":               SignerKubeletServing,
		"system:certificates.k8s.io:kube-apiserver-client-approver":         SignerKubeAPIServerClient,
		"system:certificates.k8s.io:kube-apiserver-client-kubelet-approver": SignerKubeAPIServerClientKubelet,
	} {
		r := roles[name]
		if r == nil || len(r.Rules) != 1 || !RuleAllows(signer("approve", signerName), r.Rules[0]) ||
			RuleAllows(signer("approve", "example.com/other"), r.Rules[0]) {
			t.Errorf("ClusterRole %s = %+v, want approve on signers/%s only", name, r, signerName)
		}
	}
	if node := roles["system:node"]; node == nil || !anyRuleAllows(node.Rules, csrs("create", "")) || !anyRuleAllows(node.Rules, csrs("watch", "")) {
		t.Error("system:node does not create and watch certificatesigningrequests, as upstream's does")
	}
}

func anyRuleAllows(rules []rbacv1.PolicyRule, a Attributes) bool {
	for _, r := range rules {
		if RuleAllows(a, r) {
			return true
		}
	}
	return false
}
