package apiserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// grants allows exactly the listed permissions, written
// "user|verb|group|resource[/sub]|namespace|name"; a user or name of "*"
// matches any.
type grants []string

func (g grants) Authorize(_ context.Context, a Attributes) (bool, string, error) {
	res := a.Resource
	if a.Subresource != "" {
		res += "/" + a.Subresource
	}
	for _, p := range g {
		f := strings.Split(p, "|")
		if (f[0] == "*" || f[0] == a.User.Name) && f[1] == a.Verb && f[2] == a.APIGroup && f[3] == res && f[4] == a.Namespace && (f[5] == "*" || f[5] == a.Name) {
			return true, "", nil
		}
	}
	return false, "", nil
}

func TestImpersonate(t *testing.T) {
	alice := &User{Name: "alice", Groups: []string{"dev", "system:authenticated"}}
	// The request every case makes: GET /api/v1/namespaces/ns1/pods.
	legacyUser := func(name string) string { return "alice|impersonate||users||" + name }
	userInfoOn := "alice|impersonate-on:user-info:list||pods|ns1|*"
	for _, tc := range []struct {
		name    string
		authz   Authorizer
		headers map[string][]string
		want    *User  // nil: no impersonation, or refused
		via     string // the constraint recorded
		err     string // the refusal's message
		code    int32
	}{
		{name: "no headers", authz: grants{}, want: alice},
		{name: "always allow: anyone, as upstream's user-info mode", authz: AlwaysAllow{},
			headers: map[string][]string{"Impersonate-User": {"bob"}, "Impersonate-Group": {"ops"}, "Impersonate-Uid": {"u-9"}},
			want:    &User{Name: "bob", UID: "u-9", Groups: []string{"ops", "system:authenticated"}}, via: "impersonate:user-info"},
		{name: "always allow: system:masters only through the legacy mode", authz: AlwaysAllow{},
			headers: map[string][]string{"Impersonate-User": {"bob"}, "Impersonate-Group": {"system:masters"}},
			want:    &User{Name: "bob", Groups: []string{"system:masters", "system:authenticated"}}},
		{name: "always allow: a node gets the nodes group", authz: AlwaysAllow{},
			headers: map[string][]string{"Impersonate-User": {"system:node:n1"}},
			want:    &User{Name: "system:node:n1", Groups: []string{"system:nodes", "system:authenticated"}}, via: "impersonate:arbitrary-node"},
		{name: "no permission: the user-info mode's refusal comes first", authz: grants{},
			headers: map[string][]string{"Impersonate-User": {"bob"}}, code: 403,
			err: `pods is forbidden: User "alice" cannot impersonate-on:user-info:list resource "pods" in API group "" in the namespace "ns1"`},
		{name: "legacy: one user name", authz: grants{legacyUser("bob")},
			headers: map[string][]string{"Impersonate-User": {"bob"}},
			want:    &User{Name: "bob", Groups: []string{"system:authenticated"}}},
		{name: "legacy: another user name", authz: grants{legacyUser("bob")},
			headers: map[string][]string{"Impersonate-User": {"carol"}}, code: 403,
			err: `pods is forbidden: User "alice" cannot impersonate-on:user-info:list resource "pods" in API group "" in the namespace "ns1"`},
		{name: "legacy refusal when the constrained mode does not apply", authz: grants{},
			headers: map[string][]string{"Impersonate-User": {"system:serviceaccount:ns1:app"}, "Impersonate-Group": {"g"}}, code: 403,
			err: `serviceaccounts "app" is forbidden: User "alice" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "ns1"`},
		{name: "legacy: a group not granted", authz: grants{legacyUser("bob")},
			headers: map[string][]string{"Impersonate-User": {"bob"}, "Impersonate-Group": {"ops"}}, code: 403,
			err: `pods is forbidden: User "alice" cannot impersonate-on:user-info:list resource "pods" in API group "" in the namespace "ns1"`},
		{name: "user-info: the identity refused", authz: grants{userInfoOn},
			headers: map[string][]string{"Impersonate-User": {"bob"}}, code: 403,
			err: `users.authentication.k8s.io "bob" is forbidden: User "alice" cannot impersonate:user-info resource "users" in API group "authentication.k8s.io" at the cluster scope`},
		{name: "user-info: allowed", authz: grants{userInfoOn, "alice|impersonate:user-info|authentication.k8s.io|users||bob",
			"alice|impersonate:user-info|authentication.k8s.io|groups||ops", "alice|impersonate:user-info|authentication.k8s.io|userextras/example.com/scopes||view"},
			headers: map[string][]string{"Impersonate-User": {"bob"}, "Impersonate-Group": {"ops"}, "Impersonate-Extra-Example.com%2fscopes": {"view"}},
			want:    &User{Name: "bob", Groups: []string{"ops", "system:authenticated"}, Extra: map[string][]string{"example.com/scopes": {"view"}}}, via: "impersonate:user-info"},
		{name: "user-info: never system:masters", authz: grants{userInfoOn, "alice|impersonate:user-info|authentication.k8s.io|users||bob"},
			headers: map[string][]string{"Impersonate-User": {"bob"}, "Impersonate-Group": {"system:masters"}}, code: 403,
			err: `groups.authentication.k8s.io "system:masters" is forbidden: User "alice" cannot impersonate:user-info resource "groups" in API group "authentication.k8s.io" at the cluster scope: impersonating the system:masters group is not allowed`},
		{name: "legacy: a service account gets its groups", authz: grants{"alice|impersonate||serviceaccounts|ns1|app"},
			headers: map[string][]string{"Impersonate-User": {"system:serviceaccount:ns1:app"}},
			want:    &User{Name: "system:serviceaccount:ns1:app", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated"}}},
		{name: "legacy: uid and extra", authz: grants{legacyUser("bob"), "alice|impersonate|authentication.k8s.io|uids||u-1",
			"alice|impersonate|authentication.k8s.io|userextras/example.com/team||a"},
			headers: map[string][]string{"Impersonate-User": {"bob"}, "Impersonate-Uid": {"u-1"}, "Impersonate-Extra-Example.com%2fteam": {"a"}},
			want:    &User{Name: "bob", UID: "u-1", Groups: []string{"system:authenticated"}, Extra: map[string][]string{"example.com/team": {"a"}}}},
		{name: "anonymous", authz: grants{legacyUser("system:anonymous")},
			headers: map[string][]string{"Impersonate-User": {"system:anonymous"}},
			want:    &User{Name: "system:anonymous", Groups: []string{"system:unauthenticated"}}},
		{name: "a group without a user", authz: AlwaysAllow{},
			headers: map[string][]string{"Impersonate-Group": {"ops"}}, code: 400,
			err: `requested &user.DefaultInfo{Name:"", UID:"", Groups:[]string{"ops"}, Extra:map[string][]string(nil)} without impersonating a user name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{Authorizer: tc.authz})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/ns1/pods", nil)
			for k, vs := range tc.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			r.Header.Set("Accept", "application/json")
			got, u, err := s.impersonate(r, alice, parseRequest(r))
			if tc.err != "" {
				st, ok := err.(apierrors.APIStatus)
				if !ok {
					t.Fatalf("want %d %q, got %v", tc.code, tc.err, err)
				}
				if st.Status().Code != tc.code || st.Status().Message != tc.err {
					t.Fatalf("got  %d %q\nwant %d %q", st.Status().Code, st.Status().Message, tc.code, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, u); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
			im, ok := ImpersonationFrom(got.Context())
			if len(tc.headers) == 0 {
				if ok || got != r {
					t.Error("a request without impersonation headers was changed")
				}
				return
			}
			if !ok || im.Impersonator != alice || im.Constraint != tc.via {
				t.Errorf("recorded %+v, want impersonator alice, constraint %q", im, tc.via)
			}
			for k := range tc.headers {
				if got.Header.Get(k) == "" && r.Header.Get(k) == "" {
					t.Errorf("the caller's header %s was removed", k)
				}
				if got.Header.Get(k) != "" {
					t.Errorf("header %s still on the request", k)
				}
			}
		})
	}
}

// TestImpersonateWhoAmI: the request runs as the impersonated user, as
// `kubectl --as=bob auth whoami` shows, and is authorized as that user.
func TestImpersonateWhoAmI(t *testing.T) {
	alice := &User{Name: "alice", Groups: []string{"system:authenticated"}}
	s, err := New(Config{Authenticator: fixedUser{alice}, Authorizer: grants{
		"alice|impersonate||users||bob",
		"alice|create|authentication.k8s.io|selfsubjectreviews||*",
	}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	whoami := func(as string) (*authenticationv1.SelfSubjectReview, error) {
		cs := kubernetes.NewForConfigOrDie(&rest.Config{Host: hs.URL, Impersonate: rest.ImpersonationConfig{UserName: as}})
		return cs.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	}
	got, err := whoami("")
	if err != nil || got.Status.UserInfo.Username != "alice" {
		t.Fatalf("without --as: %v %v", got, err)
	}
	// bob may not create selfsubjectreviews: the request is bob's.
	_, err = whoami("bob")
	want := `selfsubjectreviews.authentication.k8s.io is forbidden: User "bob" cannot create resource "selfsubjectreviews" in API group "authentication.k8s.io" at the cluster scope`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Fatalf("as bob: got %v\nwant %s", err, want)
	}
	_, err = whoami("carol")
	want = `selfsubjectreviews.authentication.k8s.io is forbidden: User "alice" cannot impersonate-on:user-info:create resource "selfsubjectreviews" in API group "authentication.k8s.io" at the cluster scope`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Fatalf("as carol: got %v\nwant %s", err, want)
	}
}
