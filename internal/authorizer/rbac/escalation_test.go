package rbac

import (
	"context"
	"errors"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

func TestCovers(t *testing.T) {
	tests := []struct {
		name           string
		owner, servant []rbacv1.PolicyRule
		want           bool
	}{
		{"same", []rbacv1.PolicyRule{on(l(""), l("pods"), read)}, []rbacv1.PolicyRule{on(l(""), l("pods"), l("get"))}, true},
		{"more verbs", []rbacv1.PolicyRule{on(l(""), l("pods"), l("get"))}, []rbacv1.PolicyRule{on(l(""), l("pods"), read)}, false},
		{"split over two owner rules", []rbacv1.PolicyRule{on(l(""), l("pods"), l("get")), on(l(""), l("pods"), l("list"))},
			[]rbacv1.PolicyRule{on(l(""), l("pods"), l("get", "list"))}, true},
		{"wildcards", []rbacv1.PolicyRule{on(l("*"), l("*"), l("*"))}, []rbacv1.PolicyRule{on(l("apps"), l("deployments/scale"), l("update"))}, true},
		{"wildcard resource is not a wildcard url", []rbacv1.PolicyRule{on(l("*"), l("*"), l("*"))}, []rbacv1.PolicyRule{urls(l("/metrics"), "get")}, false},
		{"*/sub covers x/sub", []rbacv1.PolicyRule{on(l("apps"), l("*/scale"), l("update"))}, []rbacv1.PolicyRule{on(l("apps"), l("deployments/scale"), l("update"))}, true},
		{"*/sub does not cover x", []rbacv1.PolicyRule{on(l("apps"), l("*/scale"), l("update"))}, []rbacv1.PolicyRule{on(l("apps"), l("deployments"), l("update"))}, false},
		{"granting a wildcard needs the wildcard", []rbacv1.PolicyRule{on(l(""), l("pods", "secrets"), l("get"))}, []rbacv1.PolicyRule{on(l(""), l("*"), l("get"))}, false},
		{"names covered by no names", []rbacv1.PolicyRule{on(l(""), l("configmaps"), l("get"))}, []rbacv1.PolicyRule{onNamed(l(""), l("configmaps"), l("a"), l("get"))}, true},
		{"names covered by same names", []rbacv1.PolicyRule{onNamed(l(""), l("configmaps"), l("a", "b"), l("get"))}, []rbacv1.PolicyRule{onNamed(l(""), l("configmaps"), l("b"), l("get"))}, true},
		{"names not covered by other names", []rbacv1.PolicyRule{onNamed(l(""), l("configmaps"), l("a"), l("get"))}, []rbacv1.PolicyRule{onNamed(l(""), l("configmaps"), l("c"), l("get"))}, false},
		{"all names not covered by some", []rbacv1.PolicyRule{onNamed(l(""), l("configmaps"), l("a"), l("get"))}, []rbacv1.PolicyRule{on(l(""), l("configmaps"), l("get"))}, false},
		{"url prefix", []rbacv1.PolicyRule{urls(l("/healthz/*"), "get")}, []rbacv1.PolicyRule{urls(l("/healthz/etcd"), "get")}, true},
		{"url star", []rbacv1.PolicyRule{urls(l("*"), "*")}, []rbacv1.PolicyRule{urls(l("/x", "/y/*"), "get", "post")}, true},
		{"url other", []rbacv1.PolicyRule{urls(l("/healthz"), "get")}, []rbacv1.PolicyRule{urls(l("/metrics"), "get")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, missing := Covers(tt.owner, tt.servant); got != tt.want {
				t.Errorf("Covers = %v (missing %v), want %v", got, missing, tt.want)
			}
		})
	}
}

func TestConfirmNoEscalationMessage(t *testing.T) {
	a := testAuthorizer()
	bob := &User{Name: "bob", Groups: l("dev", GroupAuthenticated)}
	err := a.ConfirmNoEscalation(bob, []rbacv1.PolicyRule{
		on(l(""), l("pods"), l("get", "delete", "update")),
		on(l("apps"), l("deployments"), l("get")),
		urls(l("/metrics"), "get"),
	}, "ns1")
	want := "user \"bob\" (groups=[\"dev\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n" +
		"{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\" \"update\"]}\n" +
		"{APIGroups:[\"apps\"], Resources:[\"deployments\"], Verbs:[\"get\"]}\n" +
		"{NonResourceURLs:[\"/metrics\"], Verbs:[\"get\"]}"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
	if !errors.Is(err, ErrEscalation) {
		t.Errorf("error does not match ErrEscalation")
	}
	if err := a.ConfirmNoEscalation(bob, []rbacv1.PolicyRule{on(l(""), l("pods"), l("list"))}, "ns1"); err != nil {
		t.Errorf("bob may grant what he holds: %v", err)
	}
	if err := a.ConfirmNoEscalation(bob, []rbacv1.PolicyRule{on(l(""), l("pods"), l("list"))}, ""); err == nil {
		t.Errorf("bob may grant cluster-wide what he holds only in ns1")
	}
	// Resolution errors are appended when the rules are not covered.
	err = a.ConfirmNoEscalation(&User{Name: "dan"}, []rbacv1.PolicyRule{on(l(""), l("pods"), l("get"))}, "")
	if want := `; resolution errors: [clusterrole.rbac.authorization.k8s.io "gone" not found]`; err == nil || !hasSuffix(err.Error(), want) {
		t.Errorf("error %v does not end with %s", err, want)
	}
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

// bootstrapped returns an Authorizer holding the bootstrap policy with
// admin, edit and view aggregated, plus the extra objects.
func bootstrapped(t testing.TB, roles []*rbacv1.ClusterRole, crbs []*rbacv1.ClusterRoleBinding, rbs []*rbacv1.RoleBinding) *Authorizer {
	t.Helper()
	all := append(aggregateAll(t, ClusterRoles()), roles...)
	a := New()
	a.Replace(all, nil, append(ClusterRoleBindings(), crbs...), rbs)
	return a
}

// aggregateAll runs aggregation to a fixed point, as the controller does
// over several passes (edit gathers view, admin gathers edit).
func aggregateAll(t testing.TB, roles []*rbacv1.ClusterRole) []*rbacv1.ClusterRole {
	t.Helper()
	for pass := 0; ; pass++ {
		changed := false
		for _, r := range roles {
			rules, ok, err := AggregatedRules(r, roles)
			if err != nil {
				t.Fatal(err)
			}
			if ok && len(rules) != len(r.Rules) {
				r.Rules, changed = rules, true
			}
		}
		if !changed {
			return roles
		}
		if pass > 5 {
			t.Fatal("aggregation does not settle")
		}
	}
}

func TestConfirmBinding(t *testing.T) {
	ctx := context.Background()
	editor := &User{Name: "ed", Groups: l(GroupAuthenticated)}
	binder := &User{Name: "binder", Groups: l(GroupAuthenticated)}
	escalator := &User{Name: "esc", Groups: l(GroupAuthenticated)}
	a := bootstrapped(t,
		[]*rbacv1.ClusterRole{
			cr("bind-admin", onNamed(l(rbacv1.GroupName), l("clusterroles"), l("cluster-admin"), l("bind")),
				on(l(rbacv1.GroupName), l("rolebindings"), l("create"))),
			cr("escalate-roles", on(l(rbacv1.GroupName), l("clusterroles", "roles"), l("escalate", "create"))),
		}, nil,
		[]*rbacv1.RoleBinding{
			rb("team", "ed-edit", "ClusterRole", "edit", user("ed")),
			rb("team", "binder", "ClusterRole", "bind-admin", user("binder")),
			rb("team", "esc", "ClusterRole", "escalate-roles", user("esc")),
		})
	clusterAdmin := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"}
	view := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"}

	err := a.ConfirmBinding(ctx, editor, clusterAdmin, "team")
	if !errors.Is(err, ErrEscalation) {
		t.Fatalf("edit binding cluster-admin: %v, want an escalation error", err)
	}
	if err := a.ConfirmBinding(ctx, editor, view, "team"); err != nil {
		t.Errorf("edit binding view in its namespace: %v", err)
	}
	if err := a.ConfirmBinding(ctx, editor, view, "other"); !errors.Is(err, ErrEscalation) {
		t.Errorf("edit binding view outside its namespace: %v, want an escalation error", err)
	}
	if err := a.ConfirmBinding(ctx, editor, view, ""); !errors.Is(err, ErrEscalation) {
		t.Errorf("edit binding view cluster-wide: %v, want an escalation error", err)
	}
	if err := a.ConfirmBinding(ctx, binder, clusterAdmin, "team"); err != nil {
		t.Errorf("bind on cluster-admin in team: %v", err)
	}
	if err := a.ConfirmBinding(ctx, binder, clusterAdmin, ""); !errors.Is(err, ErrEscalation) {
		t.Errorf("bind in team used for a ClusterRoleBinding: %v, want an escalation error", err)
	}
	if err := a.ConfirmBinding(ctx, binder, view, "team"); !errors.Is(err, ErrEscalation) {
		t.Errorf("bind on cluster-admin used for view: %v, want an escalation error", err)
	}
	if err := a.ConfirmBinding(ctx, &User{Name: "root", Groups: l(SystemMasters)}, clusterAdmin, ""); err != nil {
		t.Errorf("system:masters: %v", err)
	}
	missing := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "nope"}
	if err := a.ConfirmBinding(ctx, editor, missing, "team"); !apierrors.IsNotFound(err) {
		t.Errorf("binding a missing role: %v, want NotFound", err)
	}

	// Roles: escalate lets a user write rules it does not hold.
	all := []rbacv1.PolicyRule{on(l("*"), l("*"), l("*"))}
	if err := a.ConfirmRole(ctx, editor, "team", "r", all, false); !errors.Is(err, ErrEscalation) {
		t.Errorf("edit writing a role with everything: %v, want an escalation error", err)
	}
	if err := a.ConfirmRole(ctx, editor, "team", "r", []rbacv1.PolicyRule{on(l(""), l("secrets"), l("get"))}, false); err != nil {
		t.Errorf("edit writing a role it holds: %v", err)
	}
	if err := a.ConfirmRole(ctx, escalator, "team", "r", all, false); err != nil {
		t.Errorf("escalate writing a role with everything: %v", err)
	}
	if err := a.ConfirmRole(ctx, escalator, "", "r", all, false); !errors.Is(err, ErrEscalation) {
		t.Errorf("escalate in team writing a ClusterRole: %v, want an escalation error", err)
	}
	err = a.ConfirmRole(ctx, editor, "", "agg", nil, true)
	if err == nil || err.Error() != "must have cluster-admin privileges to use the aggregationRule" {
		t.Errorf("edit writing an aggregated ClusterRole: %v", err)
	}
}
