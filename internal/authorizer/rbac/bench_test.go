package rbac

import (
	"context"
	"fmt"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

// benchAuthorizer holds the bootstrap policy plus 1,000 ClusterRoles of
// five rules each and 1,000 bindings: 500 ClusterRoleBindings to distinct
// users and groups, 500 RoleBindings over 50 namespaces to service
// accounts. When sharedGroup is set every binding also names one group,
// the worst case for the index (each decision then visits all of them).
func benchAuthorizer(b *testing.B, sharedGroup string) *Authorizer {
	var (
		roles []*rbacv1.ClusterRole
		crbs  []*rbacv1.ClusterRoleBinding
		rbs   []*rbacv1.RoleBinding
	)
	for i := 0; i < 1000; i++ {
		g := fmt.Sprintf("group%d.example.com", i)
		roles = append(roles, cr(fmt.Sprintf("role-%d", i),
			on(l(g), l("widgets", "gadgets"), read),
			on(l(g), l("widgets/status"), l("update", "patch")),
			onNamed(l(""), l("configmaps"), l(fmt.Sprintf("cm-%d", i)), l("get", "update")),
			on(l("apps"), l("deployments", "replicasets"), read),
			on(l(""), l("pods", "pods/log"), read)))
	}
	extra := func(s ...rbacv1.Subject) []rbacv1.Subject {
		if sharedGroup != "" {
			s = append(s, group(sharedGroup))
		}
		return s
	}
	for i := 0; i < 500; i++ {
		crbs = append(crbs, crb(fmt.Sprintf("crb-%d", i), fmt.Sprintf("role-%d", i),
			extra(user(fmt.Sprintf("user-%d", i)), group(fmt.Sprintf("team-%d", i)))...))
	}
	for i := 0; i < 500; i++ {
		ns := fmt.Sprintf("ns-%d", i%50)
		rbs = append(rbs, rb(ns, fmt.Sprintf("rb-%d", i), "ClusterRole", fmt.Sprintf("role-%d", 500+i),
			extra(rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: fmt.Sprintf("sa-%d", i)})...))
	}
	return bootstrapped(b, roles, crbs, rbs)
}

func BenchmarkAuthorize(b *testing.B) {
	ctx := context.Background()
	// sa-7 in ns-7 is bound to role-507.
	sa := &User{Name: "system:serviceaccount:ns-7:sa-7",
		Groups: l("system:serviceaccounts", "system:serviceaccounts:ns-7", GroupAuthenticated)}
	cases := []struct {
		name, sharedGroup string
		req               Attributes
		allowed           bool
	}{
		// The last rule of the role allows it.
		{"allowed", "", in(res("get", "", "pods", "log", "p"), sa, "ns-7"), true},
		{"allowed-named", "", in(res("update", "", "configmaps", "", "cm-507"), sa, "ns-7"), true},
		// Every rule of every binding of the user is tried.
		{"denied", "", in(res("list", "", "secrets", "", ""), sa, "ns-7"), false},
		{"denied-nonresource", "", in(path("get", "/metrics"), sa, ""), false},
		// Every binding names one of the user's groups.
		{"denied-all-bindings-apply", GroupAuthenticated, in(res("list", "", "secrets", "", ""), sa, "ns-7"), false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			a := benchAuthorizer(b, c.sharedGroup)
			if ok, reason, _ := a.Authorize(ctx, c.req); ok != c.allowed {
				b.Fatalf("allowed=%v (%q), want %v", ok, reason, c.allowed)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				a.Authorize(ctx, c.req)
			}
		})
	}
}
