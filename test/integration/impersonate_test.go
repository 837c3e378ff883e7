package integration

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/test/framework"
)

// With RBAC on, system:masters may act as anyone; a user without the
// impersonate verb may not (403, upstream's message); a user granted
// impersonate on one user name may act as that user only, and then does
// only what that user may.
func TestImpersonation(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(tokens, []byte("alice-token,alice,u-alice,\"staff\"\nimp-token,imp,u-imp,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := framework.StartInProcess(t, framework.WithAuthorization(server.ModeRBAC), framework.WithTokenFile(tokens))
	ctx := ctxT(t)
	as := func(token string, im rest.ImpersonationConfig) kubernetes.Interface {
		cfg := rest.CopyConfig(c.Config)
		if token != "" {
			cfg = rest.AnonymousClientConfig(c.Config)
			cfg.BearerToken = token
		}
		cfg.Impersonate = im
		return kubernetes.NewForConfigOrDie(cfg)
	}
	whoami := func(cs kubernetes.Interface) (authenticationv1.UserInfo, error) {
		r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			return authenticationv1.UserInfo{}, err
		}
		return r.Status.UserInfo, nil
	}

	// The admin (system:masters) acts as anyone, with groups, uid and
	// extra; the impersonated user is authenticated.
	got, err := whoami(as("", rest.ImpersonationConfig{UserName: "carol", UID: "u-carol", Groups: []string{"dev"},
		Extra: map[string][]string{"example.com/team": {"blue"}}}))
	if err != nil {
		t.Fatal(err)
	}
	want := authenticationv1.UserInfo{Username: "carol", UID: "u-carol", Groups: []string{"dev", "system:authenticated"},
		Extra: map[string]authenticationv1.ExtraValue{"example.com/team": {"blue"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("admin as carol (-want +got):\n%s", diff)
	}
	got, err = whoami(as("", rest.ImpersonationConfig{UserName: "system:serviceaccount:default:default"}))
	if err != nil {
		t.Fatal(err)
	}
	want = authenticationv1.UserInfo{Username: "system:serviceaccount:default:default",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("admin as a service account (-want +got):\n%s", diff)
	}
	// The request is authorized as the impersonated user.
	_, err = as("", rest.ImpersonationConfig{UserName: "carol"}).CoreV1().Secrets("default").List(ctx, metav1.ListOptions{})
	const carolSecrets = `secrets is forbidden: User "carol" cannot list resource "secrets" in API group "" in the namespace "default"`
	if !apierrors.IsForbidden(err) || err.Error() != carolSecrets {
		t.Fatalf("admin as carol listing secrets: %v, want 403 %q", err, carolSecrets)
	}

	// alice may not impersonate. Upstream tries the constrained modes
	// (ConstrainedImpersonation, on by default since 1.36) first and
	// answers with the first refusal.
	_, err = whoami(as("alice-token", rest.ImpersonationConfig{UserName: "bob"}))
	const aliceRefused = `selfsubjectreviews.authentication.k8s.io is forbidden: User "alice" cannot impersonate-on:user-info:create resource "selfsubjectreviews" in API group "authentication.k8s.io" at the cluster scope`
	if !apierrors.IsForbidden(err) || err.Error() != aliceRefused {
		t.Fatalf("alice as bob: %v, want 403 %q", err, aliceRefused)
	}
	// Without the headers alice is alice.
	if got, err := whoami(as("alice-token", rest.ImpersonationConfig{})); err != nil || got.Username != "alice" {
		t.Fatalf("alice: %+v %v", got, err)
	}
	// A legacy impersonate grant on a service account: the constrained
	// serviceaccount mode refuses first, the legacy one allows.
	_, err = whoami(as("alice-token", rest.ImpersonationConfig{UserName: "system:serviceaccount:default:default"}))
	const aliceSA = `selfsubjectreviews.authentication.k8s.io is forbidden: User "alice" cannot impersonate-on:serviceaccount:create resource "selfsubjectreviews" in API group "authentication.k8s.io" at the cluster scope`
	if !apierrors.IsForbidden(err) || err.Error() != aliceSA {
		t.Fatalf("alice as a service account: %v, want 403 %q", err, aliceSA)
	}

	// imp may impersonate the user bob, and no one else.
	if _, err := c.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "impersonate-bob"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: []string{"bob"}}}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "imp-impersonate-bob"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "impersonate-bob"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "imp"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	imp := func(name string, groups ...string) kubernetes.Interface {
		return as("imp-token", rest.ImpersonationConfig{UserName: name, Groups: groups})
	}
	framework.Eventually(t, 5*time.Second, func() bool {
		got, err := whoami(imp("bob"))
		return err == nil && got.Username == "bob"
	})
	got, _ = whoami(imp("bob"))
	if diff := cmp.Diff(authenticationv1.UserInfo{Username: "bob", Groups: []string{"system:authenticated"}}, got); diff != "" {
		t.Errorf("imp as bob (-want +got):\n%s", diff)
	}
	const impRefused = `selfsubjectreviews.authentication.k8s.io is forbidden: User "imp" cannot impersonate-on:user-info:create resource "selfsubjectreviews" in API group "authentication.k8s.io" at the cluster scope`
	if _, err := whoami(imp("carol")); !apierrors.IsForbidden(err) || err.Error() != impRefused {
		t.Fatalf("imp as carol: %v, want 403 %q", err, impRefused)
	}
	// Nor may imp add a group to bob.
	if _, err := whoami(imp("bob", "system:masters")); !apierrors.IsForbidden(err) || err.Error() != impRefused {
		t.Fatalf("imp as bob in system:masters: %v, want 403 %q", err, impRefused)
	}
	// Given the constrained permissions, imp gets the user-info mode's own
	// refusal for carol.
	if _, err := c.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "impersonate-on-reviews"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"selfsubjectreviews"}, Verbs: []string{"impersonate-on:user-info:create"}}}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "imp-impersonate-on-reviews"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "impersonate-on-reviews"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "imp"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const impCarol = `users.authentication.k8s.io "carol" is forbidden: User "imp" cannot impersonate:user-info resource "users" in API group "authentication.k8s.io" at the cluster scope`
	framework.Eventually(t, 5*time.Second, func() bool {
		_, err := whoami(imp("carol"))
		return err != nil && err.Error() == impCarol
	})
	// bob still works, through the legacy grant.
	if got, err := whoami(imp("bob")); err != nil || got.Username != "bob" {
		t.Fatalf("imp as bob: %+v %v", got, err)
	}
}

// Under AlwaysAllow every authenticated user may impersonate anyone.
func TestImpersonationAlwaysAllow(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(tokens, []byte("alice-token,alice,u-alice,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := framework.StartInProcess(t, framework.WithAuthorization(server.ModeAlwaysAllow), framework.WithTokenFile(tokens))
	cfg := rest.AnonymousClientConfig(c.Config)
	cfg.BearerToken = "alice-token"
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:admin", Groups: []string{"system:masters"}}
	r, err := kubernetes.NewForConfigOrDie(cfg).AuthenticationV1().SelfSubjectReviews().Create(ctxT(t), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := authenticationv1.UserInfo{Username: "system:admin", Groups: []string{"system:masters", "system:authenticated"}}
	if diff := cmp.Diff(want, r.Status.UserInfo); diff != "" {
		t.Errorf("alice as system:admin (-want +got):\n%s", diff)
	}
}
