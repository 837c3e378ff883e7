package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/test/framework"
)

// With --authorization-mode=RBAC a new service account may do nothing
// beyond discovery, gains what a binding grants within a second, and a
// user cannot grant what it does not hold.
func TestRBAC(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(tokens, []byte("eve-token,eve,u-eve,\"staff\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := framework.StartInProcess(t, framework.WithControllers(), framework.WithAuthorization(server.ModeRBAC), framework.WithTokenFile(tokens))
	ctx := ctxT(t)
	admin := c.Client
	mustNamespace(t, admin, "team")
	if _, err := admin.CoreV1().ServiceAccounts("team").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := admin.CoreV1().ServiceAccounts("team").CreateToken(ctx, "app", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	app := clientWithToken(t, c, tr.Status.Token)
	eve := clientWithToken(t, c, "eve-token")

	_, err = app.CoreV1().Secrets("team").List(ctx, metav1.ListOptions{})
	const want = `secrets is forbidden: User "system:serviceaccount:team:app" cannot list resource "secrets" in API group "" in the namespace "team"`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Fatalf("a new service account listing secrets: %v, want 403 %q", err, want)
	}
	if _, err := app.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("a new service account listing nodes: %v, want 403", err)
	}
	if _, err := app.Discovery().ServerVersion(); err != nil {
		t.Fatalf("a new service account reading /version: %v", err)
	}

	// view, aggregated from upstream's aggregate-to-view rules, reads pods
	// but not secrets.
	bind(t, admin, "team", "app-view", "view", rbacv1.Subject{Kind: "ServiceAccount", Name: "app", Namespace: "team"})
	start := time.Now()
	framework.Eventually(t, time.Second, func() bool {
		_, err := app.CoreV1().Pods("team").List(ctx, metav1.ListOptions{})
		return err == nil
	})
	t.Logf("a view binding took effect in %v", time.Since(start).Round(time.Millisecond))
	if _, err := app.CoreV1().Secrets("team").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("view listing secrets: %v, want 403", err)
	}
	if _, err := app.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("a namespace's view binding listing pods elsewhere: %v, want 403", err)
	}
	review, err := app.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "team", Verb: "get", Resource: "secrets"}}}, metav1.CreateOptions{})
	if err != nil || review.Status.Allowed {
		t.Fatalf("can-i get secrets with view: %+v %v, want no", review, err)
	}

	// Neither a user with edit nor a namespace's admin can make itself
	// cluster-admin: edit may not write bindings, and admin may grant only
	// what it holds.
	makeClusterAdmin := func() error {
		_, err := eve.RbacV1().RoleBindings("team").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "eve-admin"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects: []rbacv1.Subject{{Kind: "User", Name: "eve"}}}, metav1.CreateOptions{})
		return err
	}
	bind(t, admin, "team", "eve-edit", "edit", rbacv1.Subject{Kind: "User", Name: "eve"})
	framework.Eventually(t, time.Second, func() bool {
		_, err := eve.CoreV1().Secrets("team").List(ctx, metav1.ListOptions{})
		return err == nil
	})
	if err := makeClusterAdmin(); !apierrors.IsForbidden(err) {
		t.Fatalf("edit binding cluster-admin: %v, want 403", err)
	}
	bind(t, admin, "team", "eve-admin-ns", "admin", rbacv1.Subject{Kind: "User", Name: "eve"})
	framework.Eventually(t, time.Second, func() bool {
		_, err := eve.RbacV1().RoleBindings("team").List(ctx, metav1.ListOptions{})
		return err == nil
	})
	if err := makeClusterAdmin(); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "is attempting to grant RBAC permissions not currently held") {
		t.Fatalf("a namespace admin binding cluster-admin: %v, want 403 for escalation", err)
	}
	_, err = eve.RbacV1().Roles("team").Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "nodes"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"delete"}}}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("a namespace admin creating a role beyond its own: %v, want 403", err)
	}
	// What it holds, it may grant.
	if _, err := eve.RbacV1().RoleBindings("team").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "app-edit"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "app", Namespace: "team"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("a namespace admin binding edit: %v", err)
	}
}

func bind(t *testing.T, cs kubernetes.Interface, ns, name, clusterRole string, subject rbacv1.Subject) {
	t.Helper()
	_, err := cs.RbacV1().RoleBindings(ns).Create(context.Background(), &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects: []rbacv1.Subject{subject}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// bindCluster binds clusterRole to subjects cluster-wide (the tests of
// authentication and flow control run under the default Node,RBAC too).
func bindCluster(t *testing.T, cs kubernetes.Interface, name, clusterRole string, subjects ...rbacv1.Subject) {
	t.Helper()
	_, err := cs.RbacV1().ClusterRoleBindings().Create(context.Background(), &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects: subjects}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func clientWithToken(t *testing.T, c *framework.Cluster, token string) kubernetes.Interface {
	t.Helper()
	cfg := rest.AnonymousClientConfig(c.Config)
	cfg.BearerToken = token
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
