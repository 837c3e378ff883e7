package server

import (
	"net/http"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/authorizer/rbac"
	"github.com/skiff-io/skiff/internal/controller/manager"
)

func TestLoopbackIdentities(t *testing.T) {
	ids := newLoopbackIdentities()
	base := &rest.Config{Host: "https://127.0.0.1:6443", BearerToken: "inherited"}
	authenticate := func(rc *rest.Config) string {
		t.Helper()
		r, _ := http.NewRequest(http.MethodGet, "/api", nil)
		r.Header.Set("Authorization", "Bearer "+rc.BearerToken)
		u, ok, err := ids.AuthenticateRequest(r)
		if err != nil || !ok {
			t.Fatalf("token of %v not authenticated: %v %v", rc, ok, err)
		}
		return u.Name + " " + strings.Join(u.Groups, ",")
	}
	api, _ := ids.config(base, userAPIServer)
	sched, _ := ids.config(base, rbac.UserKubeScheduler)
	deploy, _ := ids.config(base, serviceAccountUser(manager.Account("deployment")))
	again, _ := ids.config(base, rbac.UserKubeScheduler)
	for _, c := range []struct {
		rc   *rest.Config
		want string
	}{
		{api, "system:apiserver system:masters,system:authenticated"},
		{sched, "system:kube-scheduler system:authenticated"},
		{deploy, "system:serviceaccount:kube-system:deployment-controller system:serviceaccounts,system:serviceaccounts:kube-system,system:authenticated"},
	} {
		if got := authenticate(c.rc); got != c.want {
			t.Errorf("authenticated as %q, want %q", got, c.want)
		}
	}
	if sched.BearerToken == api.BearerToken || sched.BearerToken == deploy.BearerToken || sched.BearerToken == "inherited" {
		t.Error("identities share a token")
	}
	if again.BearerToken != sched.BearerToken {
		t.Error("one identity got two tokens")
	}
	r, _ := http.NewRequest(http.MethodGet, "/api", nil)
	r.Header.Set("Authorization", "Bearer inherited")
	if _, ok, _ := ids.AuthenticateRequest(r); ok {
		t.Error("a token the identities did not make authenticated")
	}
}

// Every controller acts as an account that the bootstrap policy binds to
// a role of its own.
func TestControllerAccountsAreBound(t *testing.T) {
	bound := map[string]bool{}
	for _, b := range rbac.ClusterRoleBindings() {
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && s.Namespace == rbac.ControllerNamespace && b.RoleRef.Name == rbac.ControllerRolePrefix+s.Name {
				bound[s.Name] = true
			}
		}
	}
	// Or by a RoleBinding in kube-system, where upstream grants a
	// controller rights there alone (the token cleaner).
	for _, b := range rbac.RoleBindings() {
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && s.Namespace == rbac.ControllerNamespace && b.Namespace == rbac.ControllerNamespace &&
				b.RoleRef.Name == rbac.ControllerRolePrefix+s.Name {
				bound[s.Name] = true
			}
		}
	}
	for _, c := range manager.Names() {
		a := manager.Account(c)
		if a == "" || !bound[a] {
			t.Errorf("controller %s acts as %q, which no system:controller: role is bound to", c, a)
		}
	}
	if !bound["root-ca-cert-publisher"] {
		t.Error("the root CA publisher's account is not bound")
	}
}
