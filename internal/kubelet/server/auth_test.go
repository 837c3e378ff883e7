package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeReviews accepts the tokens it holds and allows what allow says,
// counting the reviews it answers.
type fakeReviews struct {
	mu       sync.Mutex
	tokens   map[string]User
	allow    func(Attributes) bool
	asked    []Attributes
	reviewed int
}

func (f *fakeReviews) ReviewToken(_ context.Context, token string) (User, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reviewed++
	u, ok := f.tokens[token]
	return u, ok, nil
}

func (f *fakeReviews) ReviewAccess(_ context.Context, a Attributes) (bool, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, a)
	return f.allow != nil && f.allow(a), "", nil
}

func (f *fakeReviews) accessReviews() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.asked)
}

func TestAuthFilter(t *testing.T) {
	reviews := &fakeReviews{
		tokens: map[string]User{"ops-token": {Name: "ops", Groups: []string{"ops", "system:authenticated"}},
			"viewer-token": {Name: "viewer"}},
		// The certificate user (kube-apiserver-kubelet-client) may do
		// everything; ops everything but stats; viewer only stats.
		allow: func(a Attributes) bool {
			switch a.User.Name {
			case "kube-apiserver-kubelet-client":
				return true
			case "ops":
				return a.Subresource != "stats"
			case "viewer":
				return a.Subresource == "stats"
			}
			return false
		},
	}
	h := startServer(t, &fakePods{}, &fakeRuntime{}, func(s *Server) { s.auth.reviews = reviews })
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: h.pki.anonymous}}
	t.Cleanup(anon.CloseIdleConnections)
	do := func(c *http.Client, method, path, token string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, h.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	cases := []struct {
		name         string
		client       *http.Client
		method, path string
		token        string
		code         int
		body         string
	}{
		{"no credentials", anon, "GET", "/pods", "", 401, "Unauthorized"},
		{"unknown token", anon, "GET", "/pods", "nope", 401, "Unauthorized"},
		{"certificate", h.client, "GET", "/pods", "", 200, ""},
		{"token allowed", anon, "GET", "/pods", "ops-token", 200, ""},
		{"token denied stats", anon, "GET", "/stats/summary", "ops-token", 403,
			"Forbidden (user=ops, verb=get, resource=nodes, subresource=stats)"},
		{"viewer denied proxy", anon, "GET", "/healthz", "viewer-token", 403,
			"Forbidden (user=viewer, verb=get, resource=nodes, subresource=proxy)"},
		{"viewer denied exec", anon, "POST", "/exec/ns/p/c", "viewer-token", 403,
			"Forbidden (user=viewer, verb=create, resource=nodes, subresource=proxy)"},
		{"viewer denied metrics", anon, "GET", "/metrics/resource", "viewer-token", 403,
			"Forbidden (user=viewer, verb=get, resource=nodes, subresource=metrics)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := do(c.client, c.method, c.path, c.token)
			if code != c.code || (c.body != "" && body != c.body) {
				t.Fatalf("%s %s = %d %q, want %d %q", c.method, c.path, code, body, c.code, c.body)
			}
		})
	}
	// The reviews were asked about this node, and the certificate user
	// carries its organizations.
	for _, a := range reviews.asked {
		if a.Name != "node-1" {
			t.Errorf("review of %+v: want name node-1", a)
		}
	}
	// A repeated request is answered from the cache.
	before, tokensBefore := reviews.accessReviews(), reviews.reviewed
	for i := 0; i < 3; i++ {
		do(anon, "GET", "/stats/summary", "ops-token")
		do(anon, "GET", "/pods", "ops-token")
	}
	if n := reviews.accessReviews(); n != before {
		t.Errorf("repeated requests asked %d more access reviews, want 0 (cached)", n-before)
	}
	if reviews.reviewed != tokensBefore {
		t.Errorf("repeated requests asked %d more token reviews, want 0 (cached)", reviews.reviewed-tokensBefore)
	}
}

func TestRequestAttributes(t *testing.T) {
	cases := []struct{ method, path, verb, sub string }{
		{"GET", "/stats/summary", "get", "stats"},
		{"GET", "/stats", "get", "stats"},
		{"GET", "/statsx", "get", "proxy"},
		{"GET", "/metrics", "get", "metrics"},
		{"GET", "/metrics/resource", "get", "metrics"},
		{"GET", "/logs/syslog", "get", "log"},
		{"GET", "/spec/", "get", "spec"},
		{"GET", "/containerLogs/ns/p/c", "get", "proxy"},
		{"POST", "/exec/ns/p/c", "create", "proxy"},
		{"POST", "/portForward/ns/p", "create", "proxy"},
		{"PUT", "/pods", "update", "proxy"},
		{"DELETE", "/pods", "delete", "proxy"},
		{"PATCH", "/pods", "patch", "proxy"},
	}
	for _, c := range cases {
		r, _ := http.NewRequest(c.method, "https://x"+c.path, nil)
		a := requestAttributes(User{Name: "u"}, r, "n1")
		if a.Verb != c.verb || a.Subresource != c.sub || a.Name != "n1" {
			t.Errorf("%s %s = %+v, want verb %s subresource %s", c.method, c.path, a, c.verb, c.sub)
		}
	}
}

// The caches expire answers (allowed after 5 minutes, denied after 30
// seconds) and never hold more than their bound.
func TestAuthCacheExpiresAndIsBounded(t *testing.T) {
	allowed := true
	reviews := &fakeReviews{allow: func(Attributes) bool { return allowed }}
	a := newAuth(reviews, "n1", nil)
	now := time.Unix(1000, 0)
	a.now = func() time.Time { return now }
	attrs := Attributes{User: User{Name: "u"}, Verb: "get", Subresource: "proxy", Name: "n1"}
	ask := func() bool {
		ok, err := a.authorize(context.Background(), attrs)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !ask() {
		t.Fatal("not allowed")
	}
	allowed = false
	now = now.Add(4 * time.Minute)
	if !ask() || reviews.accessReviews() != 1 {
		t.Fatalf("an allowed answer was not kept for 4 minutes (%d reviews)", reviews.accessReviews())
	}
	now = now.Add(2 * time.Minute)
	if ask() || reviews.accessReviews() != 2 {
		t.Fatalf("an allowed answer outlived 5 minutes (%d reviews)", reviews.accessReviews())
	}
	allowed = true
	now = now.Add(29 * time.Second)
	if ask() {
		t.Fatal("a denied answer was not kept for 29 seconds")
	}
	now = now.Add(2 * time.Second)
	if !ask() || reviews.accessReviews() != 3 {
		t.Fatalf("a denied answer outlived 30 seconds (%d reviews)", reviews.accessReviews())
	}
	for i := 0; i < 3*maxCached; i++ {
		attrs.User.Name = fmt.Sprint("user-", i)
		ask()
	}
	if n := a.access.len(); n > maxCached {
		t.Fatalf("the decision cache holds %d entries, bound %d", n, maxCached)
	}
	// Different groups are different questions.
	if accessKey(Attributes{User: User{Name: "u", Groups: []string{"a,b"}}}) == accessKey(Attributes{User: User{Name: "u", Groups: []string{"a", "b"}}}) {
		t.Fatal("the cache key confuses groups")
	}
}
