package apiserver

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/csv"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// User is an authenticated client.
type User struct {
	Name   string
	UID    string
	Groups []string
	// Extra is what an authenticator knows beyond name, uid and groups
	// (upstream's user.Info extra: "authentication.kubernetes.io/pod-name",
	// ...). SelfSubjectReview reports it. May be nil.
	Extra map[string][]string
	// Audiences are those of the requested audiences (WithAudiences, or
	// the server's own) that an audience-aware token authenticator (service
	// account tokens) accepted the credential for; nil from the others.
	// TokenReview reports them.
	Audiences []string
}

// Authenticator identifies the user of a request. It returns ok=false when
// the request carries no credentials it understands, and an error when it
// carries bad ones.
type Authenticator interface {
	AuthenticateRequest(r *http.Request) (u *User, ok bool, err error)
}

// Authenticators tries each in turn; the first that recognizes the
// request decides.
type Authenticators []Authenticator

func (as Authenticators) AuthenticateRequest(r *http.Request) (*User, bool, error) {
	for _, a := range as {
		u, ok, err := a.AuthenticateRequest(r)
		if err != nil || ok {
			return u, ok, err
		}
	}
	return nil, false, nil
}

// X509 authenticates by the client certificate of the TLS connection:
// the common name is the user, the organizations its groups (upstream's
// convention). The TLS server must verify client certificates against
// the CA (tls.VerifyClientCertIfGiven).
//
// With Roots, the certificate is verified again per request, as
// upstream's x509 authenticator does, against the pool Roots returns and
// the time now: a connection opened with a certificate that has since
// expired, or whose CA is no longer trusted (after a CA rotation), is
// refused from then on rather than for as long as it stays open. The
// outcome is kept per connection (WithClientCertCache in the server's
// ConnContext) until the pool changes or the chain expires, so a request
// costs a comparison, not a signature check.
type X509 struct {
	Roots func() *x509.CertPool
}

func (a X509) AuthenticateRequest(r *http.Request) (*User, bool, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, false, nil
	}
	cert := r.TLS.VerifiedChains[0][0]
	if a.Roots != nil {
		if err := a.verify(r); err != nil {
			return nil, false, apierrors.NewUnauthorized("client certificate: " + err.Error())
		}
	}
	if cert.Subject.CommonName == "" {
		return nil, false, fmt.Errorf("client certificate has no common name")
	}
	groups := append([]string(nil), cert.Subject.Organization...)
	return &User{Name: cert.Subject.CommonName, Groups: append(groups, "system:authenticated")}, true, nil
}

// verify checks the request's client certificate against the roots in
// force now, or finds it checked on its connection.
func (a X509) verify(r *http.Request) error {
	pool, now := a.Roots(), time.Now()
	cache, _ := r.Context().Value(clientCertCacheKey{}).(*clientCertCache)
	if cache != nil {
		cache.mu.Lock()
		ok := cache.pool == pool && now.Before(cache.until)
		cache.mu.Unlock()
		if ok {
			return nil
		}
	}
	peers := r.TLS.PeerCertificates
	inter := x509.NewCertPool()
	for _, c := range peers[1:] {
		inter.AddCert(c)
	}
	chains, err := peers[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return err
	}
	if cache != nil {
		until := peers[0].NotAfter
		for _, c := range chains[0] {
			if c.NotAfter.Before(until) {
				until = c.NotAfter
			}
		}
		cache.mu.Lock()
		cache.pool, cache.until = pool, until
		cache.mu.Unlock()
	}
	return nil
}

type clientCertCacheKey struct{}

// clientCertCache is a connection's client certificate as last verified:
// against pool, good until until.
type clientCertCache struct {
	mu    sync.Mutex
	pool  *x509.CertPool
	until time.Time
}

// WithClientCertCache is for an http.Server's ConnContext: it gives each
// connection the place X509 keeps its verdict in.
func WithClientCertCache(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, clientCertCacheKey{}, &clientCertCache{})
}

// TokenFile authenticates bearer tokens listed in a CSV file in upstream's
// static token format: token,user,uid,"group1,group2".
type TokenFile struct {
	tokens map[string]*User
}

// LoadTokenFile reads a token file.
func LoadTokenFile(path string) (*TokenFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	rd := csv.NewReader(f)
	rd.FieldsPerRecord = -1
	rd.Comment = '#'
	recs, err := rd.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	tf := &TokenFile{tokens: map[string]*User{}}
	for i, rec := range recs {
		if len(rec) < 2 || rec[0] == "" || rec[1] == "" {
			return nil, fmt.Errorf("token file %s line %d: want token,user[,uid[,groups]]", path, i+1)
		}
		u := &User{Name: rec[1]}
		if len(rec) > 2 {
			u.UID = rec[2]
		}
		if len(rec) > 3 && rec[3] != "" {
			u.Groups = strings.Split(rec[3], ",")
		}
		u.Groups = append(u.Groups, "system:authenticated")
		tf.tokens[rec[0]] = u
	}
	return tf, nil
}

func (t *TokenFile) AuthenticateRequest(r *http.Request) (*User, bool, error) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return nil, false, nil
	}
	token = strings.TrimSpace(token)
	for known, u := range t.tokens {
		if subtle.ConstantTimeCompare([]byte(known), []byte(token)) == 1 {
			return u, true, nil
		}
	}
	return nil, false, fmt.Errorf("invalid bearer token")
}

func (s *Server) authenticate(r *http.Request) (*User, error) {
	if s.cfg.Authenticator == nil {
		return nil, apierrors.NewUnauthorized("Unauthorized")
	}
	u, ok, err := s.cfg.Authenticator.AuthenticateRequest(r)
	if err != nil || !ok {
		if err != nil {
			s.log.Debug("authentication failed", "err", err, "remote", r.RemoteAddr)
		}
		return nil, apierrors.NewUnauthorized("Unauthorized")
	}
	return u, nil
}

type userKey struct{}

func withUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// WithUser returns ctx carrying u as the request's user, as the server
// does after authentication (for callers of admission and authorization
// outside a request: tests, in-process reviews).
func WithUser(ctx context.Context, u *User) context.Context { return withUser(ctx, u) }

// UserFrom returns the authenticated user of a request's context.
func UserFrom(ctx context.Context) (*User, bool) {
	u, ok := ctx.Value(userKey{}).(*User)
	return u, ok
}

// Anonymous authenticates a request that brings no credentials at all (no
// Authorization header, no client certificate) as system:anonymous in
// group system:unauthenticated, but only a GET or HEAD of one of Paths:
// upstream's anonymous authenticator restricted to its endpoints (the
// AuthenticationConfiguration's anonymous conditions). A joining node
// reads kube-public/cluster-info this way before it trusts the server
// with its token; authorization (RBAC) still decides. It must come last
// among the authenticators.
type Anonymous struct{ Paths []string }

func (a Anonymous) AuthenticateRequest(r *http.Request) (*User, bool, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return nil, false, nil
	}
	if r.Header.Get("Authorization") != "" || (r.TLS != nil && len(r.TLS.PeerCertificates) > 0) {
		return nil, false, nil
	}
	if !slices.Contains(a.Paths, r.URL.Path) {
		return nil, false, nil
	}
	return &User{Name: "system:anonymous", Groups: []string{"system:unauthenticated"}}, true, nil
}
