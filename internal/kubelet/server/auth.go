package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// User is an authenticated caller of the kubelet API.
type User struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// Attributes are what the API server is asked about a request: verb on
// resource "nodes", subresource, the node's name.
type Attributes struct {
	User        User
	Verb        string
	Subresource string
	Name        string
}

// Reviews is how the server asks the API server who a caller is and what
// it may do, as upstream's kubelet delegates both (webhook authentication
// and authorization). The server caches the answers.
type Reviews interface {
	// ReviewToken returns the user a bearer token authenticates as (a
	// TokenReview); ok is false when the API server does not accept it.
	ReviewToken(ctx context.Context, token string) (u User, ok bool, err error)
	// ReviewAccess returns whether a.User may a.Verb resource "nodes",
	// subresource a.Subresource, named a.Name (a SubjectAccessReview).
	ReviewAccess(ctx context.Context, a Attributes) (allowed bool, reason string, err error)
}

// APIReviews asks the API server through a client (the kubelet's own
// credentials: the bootstrap policy lets nodes create both reviews).
type APIReviews struct{ Client kubernetes.Interface }

func (r APIReviews) ReviewToken(ctx context.Context, token string) (User, bool, error) {
	tr, err := r.Client.AuthenticationV1().TokenReviews().Create(ctx,
		&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return User{}, false, fmt.Errorf("token review: %w", err)
	}
	if !tr.Status.Authenticated {
		return User{}, false, nil
	}
	u := tr.Status.User
	out := User{Name: u.Username, UID: u.UID, Groups: u.Groups}
	if len(u.Extra) > 0 {
		out.Extra = map[string][]string{}
		for k, v := range u.Extra {
			out.Extra[k] = v
		}
	}
	return out, true, nil
}

func (r APIReviews) ReviewAccess(ctx context.Context, a Attributes) (bool, string, error) {
	spec := authorizationv1.SubjectAccessReviewSpec{
		User: a.User.Name, UID: a.User.UID, Groups: a.User.Groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: a.Verb, Version: "v1", Resource: "nodes", Subresource: a.Subresource, Name: a.Name,
		},
	}
	if len(a.User.Extra) > 0 {
		spec.Extra = map[string]authorizationv1.ExtraValue{}
		for k, v := range a.User.Extra {
			spec.Extra[k] = v
		}
	}
	sar, err := r.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		return false, "", fmt.Errorf("subject access review: %w", err)
	}
	return sar.Status.Allowed, sar.Status.Reason, nil
}

// How long answers are kept: upstream kubelet's defaults
// (authentication.webhook.cacheTTL, authorization.webhook.cacheAuthorizedTTL
// and cacheUnauthorizedTTL), and at most maxCached of each kind.
const (
	tokenTTL       = 2 * time.Minute
	tokenFailedTTL = 10 * time.Second
	allowedTTL     = 5 * time.Minute
	deniedTTL      = 30 * time.Second
	maxCached      = 4096
)

// auth authenticates and authorizes every request, with cached reviews.
type auth struct {
	reviews  Reviews
	nodeName string
	log      *slog.Logger
	now      func() time.Time
	tokens   ttlCache[[sha256.Size]byte, tokenAnswer]
	access   ttlCache[string, bool]
}

type tokenAnswer struct {
	user User
	ok   bool
}

func newAuth(r Reviews, nodeName string, log *slog.Logger) *auth {
	if log == nil {
		log = slog.Default()
	}
	return &auth{reviews: r, nodeName: nodeName, log: log, now: time.Now,
		tokens: ttlCache[[sha256.Size]byte, tokenAnswer]{max: maxCached}, access: ttlCache[string, bool]{max: maxCached}}
}

// filter answers 401 to a request without credentials the API server
// accepts (there is no anonymous access), 403 to one the API server does
// not authorize, with upstream's plain-text bodies, and passes the others
// to next.
func (a *auth) filter(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok, err := a.authenticate(r)
		if err != nil || !ok {
			if err != nil {
				a.log.Debug("kubelet API: authentication failed", "err", err)
			}
			writeText(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		attrs := requestAttributes(u, r, a.nodeName)
		allowed, err := a.authorize(r.Context(), attrs)
		desc := fmt.Sprintf("(user=%s, verb=%s, resource=nodes, subresource=%s)", u.Name, attrs.Verb, attrs.Subresource)
		if err != nil {
			a.log.Info("kubelet API: authorization error", "user", u.Name, "verb", attrs.Verb, "subresource", attrs.Subresource, "err", err)
			writeText(w, http.StatusInternalServerError, "Authorization error "+desc)
			return
		}
		if !allowed {
			writeText(w, http.StatusForbidden, "Forbidden "+desc)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate takes the verified client certificate (common name the
// user, organizations its groups), else the bearer token through a
// TokenReview.
func (a *auth) authenticate(r *http.Request) (User, bool, error) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		c := r.TLS.VerifiedChains[0][0]
		if c.Subject.CommonName == "" {
			return User{}, false, nil
		}
		groups := append(slices.Clone(c.Subject.Organization), "system:authenticated")
		return User{Name: c.Subject.CommonName, Groups: groups}, true, nil
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		return User{}, false, nil
	}
	key := sha256.Sum256([]byte(token))
	now := a.now()
	if ans, hit := a.tokens.get(key, now); hit {
		return ans.user, ans.ok, nil
	}
	u, ok, err := a.reviews.ReviewToken(r.Context(), token)
	if err != nil {
		return User{}, false, err
	}
	ttl := tokenTTL
	if !ok {
		ttl = tokenFailedTTL
	}
	a.tokens.put(key, tokenAnswer{u, ok}, now, now.Add(ttl))
	return u, ok, nil
}

func (a *auth) authorize(ctx context.Context, attrs Attributes) (bool, error) {
	key := accessKey(attrs)
	now := a.now()
	if allowed, hit := a.access.get(key, now); hit {
		return allowed, nil
	}
	allowed, _, err := a.reviews.ReviewAccess(ctx, attrs)
	if err != nil {
		return false, err
	}
	ttl := deniedTTL
	if allowed {
		ttl = allowedTTL
	}
	a.access.put(key, allowed, now, now.Add(ttl))
	return allowed, nil
}

// accessKey is everything a review depends on, unambiguously joined.
func accessKey(a Attributes) string {
	var b strings.Builder
	field := func(s string) {
		fmt.Fprintf(&b, "%d:%s", len(s), s)
	}
	field(a.User.Name)
	field(a.User.UID)
	fmt.Fprintf(&b, "g%d", len(a.User.Groups))
	for _, g := range a.User.Groups {
		field(g)
	}
	keys := make([]string, 0, len(a.User.Extra))
	for k := range a.User.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(&b, "e%d", len(keys))
	for _, k := range keys {
		field(k)
		fmt.Fprintf(&b, "v%d", len(a.User.Extra[k]))
		for _, v := range a.User.Extra[k] {
			field(v)
		}
	}
	field(a.Verb)
	field(a.Subresource)
	field(a.Name)
	return b.String()
}

// requestAttributes is upstream's kubelet mapping: the verb from the HTTP
// method, subresource stats, metrics, log or spec for those paths and
// proxy for everything else, on the node's own name.
func requestAttributes(u User, r *http.Request, nodeName string) Attributes {
	verb := map[string]string{http.MethodPost: "create", http.MethodGet: "get", http.MethodPut: "update",
		http.MethodPatch: "patch", http.MethodDelete: "delete"}[r.Method]
	sub := "proxy"
	switch p := r.URL.Path; {
	case isSubpath(p, "/stats"):
		sub = "stats"
	case isSubpath(p, "/metrics"):
		sub = "metrics"
	case isSubpath(p, "/logs"):
		sub = "log"
	case isSubpath(p, "/spec"):
		sub = "spec"
	}
	return Attributes{User: u, Verb: verb, Subresource: sub, Name: nodeName}
}

func isSubpath(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, msg)
}

// ttlCache is a map whose entries expire, holding at most max of them:
// when full, a put first drops the expired entries and then, if still
// full, an arbitrary one. Safe for concurrent use.
type ttlCache[K comparable, V any] struct {
	mu      sync.Mutex
	max     int
	entries map[K]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func (c *ttlCache[K, V]) get(k K, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[K, V]) put(k K, v V, now, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[K]ttlEntry[V]{}
	}
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		for key, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, key)
			}
		}
		for key := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, key)
		}
	}
	c.entries[k] = ttlEntry[V]{v, expires}
}

func (c *ttlCache[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
