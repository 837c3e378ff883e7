package apiserver

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// fixedUser authenticates every request as one user.
type fixedUser struct{ u *User }

func (f fixedUser) AuthenticateRequest(*http.Request) (*User, bool, error) { return f.u, true, nil }

// denySecrets allows everything but secrets, fails on "boom", and cannot
// list rules.
type denySecrets struct{}

func (denySecrets) Authorize(_ context.Context, a Attributes) (bool, string, error) {
	switch {
	case a.Resource == "boom":
		return false, "", errors.New("authorizer broke")
	case a.Resource == "secrets" && a.User.Name != "admin":
		return false, "secrets are for admin", nil
	}
	return true, "", nil
}

// reviewServer serves only the reviews (they need no storage) to a client
// authenticated as u.
func reviewServer(t *testing.T, u *User, authz Authorizer) kubernetes.Interface {
	t.Helper()
	s, err := New(Config{Authenticator: fixedUser{u}, Authorizer: authz})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return kubernetes.NewForConfigOrDie(&rest.Config{Host: hs.URL})
}

func TestSelfSubjectReview(t *testing.T) {
	u := &User{Name: "jane", UID: "u-1", Groups: []string{"dev", "system:authenticated"},
		Extra: map[string][]string{"authentication.kubernetes.io/pod-name": {"p"}}}
	cs := reviewServer(t, u, nil)
	got, err := cs.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := authenticationv1.UserInfo{Username: "jane", UID: "u-1", Groups: []string{"dev", "system:authenticated"},
		Extra: map[string]authenticationv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"p"}}}
	if diff := cmp.Diff(want, got.Status.UserInfo); diff != "" {
		t.Errorf("userInfo (-want +got):\n%s", diff)
	}
	if got.CreationTimestamp.IsZero() {
		t.Error("no creationTimestamp")
	}
	// Create-only: nothing to list.
	_, err = cs.AuthenticationV1().RESTClient().Get().AbsPath("/apis/authentication.k8s.io/v1/selfsubjectreviews").DoRaw(context.Background())
	if !apierrors.IsMethodNotSupported(err) {
		t.Errorf("GET selfsubjectreviews: want 405, got %v", err)
	}
}

func TestAccessReviews(t *testing.T) {
	ctx := context.Background()
	cs := reviewServer(t, &User{Name: "jane"}, denySecrets{})
	az := cs.AuthorizationV1()
	pods := &authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods", Namespace: "ns"}
	secrets := &authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "ns"}
	for _, tc := range []struct {
		name    string
		create  func() (authorizationv1.SubjectAccessReviewStatus, error)
		want    authorizationv1.SubjectAccessReviewStatus
		invalid bool
	}{
		{name: "self pods", want: authorizationv1.SubjectAccessReviewStatus{Allowed: true},
			create: func() (authorizationv1.SubjectAccessReviewStatus, error) {
				r, err := az.SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
					Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: pods}}, metav1.CreateOptions{})
				return statusIf(err, func() authorizationv1.SubjectAccessReviewStatus { return r.Status })
			}},
		{name: "self secrets denied", want: authorizationv1.SubjectAccessReviewStatus{Reason: "secrets are for admin"},
			create: func() (authorizationv1.SubjectAccessReviewStatus, error) {
				r, err := az.SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
					Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: secrets}}, metav1.CreateOptions{})
				return statusIf(err, func() authorizationv1.SubjectAccessReviewStatus { return r.Status })
			}},
		{name: "self non-resource", want: authorizationv1.SubjectAccessReviewStatus{Allowed: true},
			create: func() (authorizationv1.SubjectAccessReviewStatus, error) {
				r, err := az.SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
					Spec: authorizationv1.SelfSubjectAccessReviewSpec{NonResourceAttributes: &authorizationv1.NonResourceAttributes{Verb: "get", Path: "/healthz"}}}, metav1.CreateOptions{})
				return statusIf(err, func() authorizationv1.SubjectAccessReviewStatus { return r.Status })
			}},
		{name: "self authorizer error", want: authorizationv1.SubjectAccessReviewStatus{EvaluationError: "authorizer broke"},
			create: func() (authorizationv1.SubjectAccessReviewStatus, error) {
				r, err := az.SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
					Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "boom"}}}, metav1.CreateOptions{})
				return statusIf(err, func() authorizationv1.SubjectAccessReviewStatus { return r.Status })
			}},
		{name: "self without attributes", invalid: true,
			create: func() (authorizationv1.SubjectAccessReviewStatus, error) {
				r, err := az.SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{}, metav1.CreateOptions{})
				return statusIf(err, func() authorizationv1.SubjectAccessReviewStatus { return r.Status })
			}},
		{name: "subject admin secrets", want: authorizationv1.SubjectAccessReviewStatus{Allowed: true},
			create: func() (authorizationv1.SubjectAccessReviewStatus, error) {
				r, err := az.SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
					Spec: authorizationv1.SubjectAccessReviewSpec{User: "admin", ResourceAttributes: secrets}}, metav1.CreateOptions{})
				return statusIf(err, func() authorizationv1.SubjectAccessReviewStatus { return r.Status })
			}},
		{name: "subject without user", invalid: true,
			create: func() (authorizationv1.SubjectAccessReviewStatus, error) {
				r, err := az.SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
					Spec: authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: secrets}}, metav1.CreateOptions{})
				return statusIf(err, func() authorizationv1.SubjectAccessReviewStatus { return r.Status })
			}},
		{name: "local bob secrets", want: authorizationv1.SubjectAccessReviewStatus{Reason: "secrets are for admin"},
			create: func() (authorizationv1.SubjectAccessReviewStatus, error) {
				r, err := az.LocalSubjectAccessReviews("ns").Create(ctx, &authorizationv1.LocalSubjectAccessReview{
					Spec: authorizationv1.SubjectAccessReviewSpec{User: "bob", ResourceAttributes: secrets}}, metav1.CreateOptions{})
				return statusIf(err, func() authorizationv1.SubjectAccessReviewStatus { return r.Status })
			}},
		{name: "local in another namespace", invalid: true,
			create: func() (authorizationv1.SubjectAccessReviewStatus, error) {
				r, err := az.LocalSubjectAccessReviews("other").Create(ctx, &authorizationv1.LocalSubjectAccessReview{
					Spec: authorizationv1.SubjectAccessReviewSpec{User: "bob", ResourceAttributes: secrets}}, metav1.CreateOptions{})
				return statusIf(err, func() authorizationv1.SubjectAccessReviewStatus { return r.Status })
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.create()
			if tc.invalid {
				if !apierrors.IsInvalid(err) {
					t.Fatalf("want 422 Invalid, got %v (%+v)", err, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

// statusIf returns a review's status, read only when its create succeeded.
func statusIf(err error, st func() authorizationv1.SubjectAccessReviewStatus) (authorizationv1.SubjectAccessReviewStatus, error) {
	if err != nil {
		return authorizationv1.SubjectAccessReviewStatus{}, err
	}
	return st(), nil
}

func TestSelfSubjectRulesReview(t *testing.T) {
	all := []string{"*"}
	for _, tc := range []struct {
		name  string
		authz Authorizer
		want  authorizationv1.SubjectRulesReviewStatus
	}{
		{name: "always allow", authz: AlwaysAllow{}, want: authorizationv1.SubjectRulesReviewStatus{
			ResourceRules:    []authorizationv1.ResourceRule{{Verbs: all, APIGroups: all, Resources: all}},
			NonResourceRules: []authorizationv1.NonResourceRule{{Verbs: all, NonResourceURLs: all}},
		}},
		{name: "authorizer without rules", authz: denySecrets{}, want: authorizationv1.SubjectRulesReviewStatus{
			Incomplete: true, EvaluationError: "the authorizer cannot list rules",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rr := reviewServer(t, &User{Name: "jane"}, tc.authz).AuthorizationV1().SelfSubjectRulesReviews()
			got, err := rr.Create(context.Background(), &authorizationv1.SelfSubjectRulesReview{
				Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: "ns"}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.Status); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			_, err = rr.Create(context.Background(), &authorizationv1.SelfSubjectRulesReview{}, metav1.CreateOptions{})
			if !apierrors.IsBadRequest(err) {
				t.Errorf("no namespace: want 400, got %v", err)
			}
		})
	}
}

// A review asked for as a Table is refused with 406, as upstream (the
// conformance test "should return a 406 for a backend which does not
// implement metadata").
func TestReviewAsTable(t *testing.T) {
	cs := reviewServer(t, &User{Name: "jane"}, denySecrets{})
	sar := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/", Verb: "get"}}}
	err := cs.AuthorizationV1().RESTClient().Post().Resource("selfsubjectaccessreviews").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").Body(sar).Do(context.Background()).Error()
	if s, ok := err.(apierrors.APIStatus); !ok || s.Status().Code != http.StatusNotAcceptable {
		t.Fatalf("a review as a Table: %v, want 406", err)
	}
}
