package apiserver

import (
	"context"
	"crypto/subtle"
	"encoding/csv"
	"fmt"
	"net/http"
	"os"
	"strings"

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

// X509 authenticates by the verified client certificate of the TLS
// connection: the common name is the user, the organizations its groups
// (upstream's convention). The TLS server must verify client certificates
// against the CA (tls.VerifyClientCertIfGiven).
type X509 struct{}

func (X509) AuthenticateRequest(r *http.Request) (*User, bool, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, false, nil
	}
	cert := r.TLS.VerifiedChains[0][0]
	if cert.Subject.CommonName == "" {
		return nil, false, fmt.Errorf("client certificate has no common name")
	}
	groups := append([]string(nil), cert.Subject.Organization...)
	return &User{Name: cert.Subject.CommonName, Groups: append(groups, "system:authenticated")}, true, nil
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
