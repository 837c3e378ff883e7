package apiserver

import (
	"context"
	"errors"
	"net/http"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/registry"
)

type audiencesKey struct{}

// WithAudiences returns ctx asking the token authenticators to accept a
// credential for one of auds rather than for the server's own audiences
// (TokenReview's spec.audiences).
func WithAudiences(ctx context.Context, auds []string) context.Context {
	return context.WithValue(ctx, audiencesKey{}, auds)
}

// AudiencesFrom returns the audiences WithAudiences put in ctx.
func AudiencesFrom(ctx context.Context) ([]string, bool) {
	auds, ok := ctx.Value(audiencesKey{}).([]string)
	return auds, ok
}

// tokenReviewResource is tokenreviews (authentication.k8s.io/v1, create
// only): who a bearer token is, as upstream serves it to webhooks and to
// kubelets authenticating their callers.
func (s *Server) tokenReviewResource() *registry.Resource {
	return &registry.Resource{
		GroupVersion: authenticationv1.SchemeGroupVersion, Name: "tokenreviews", Singular: "tokenreview", Kind: "TokenReview",
		New:     func() runtime.Object { return &authenticationv1.TokenReview{} },
		NewList: func() runtime.Object { return &metav1.List{} },
		Verbs:   createOnly, Create: s.tokenReview,
	}
}

// tokenReview authenticates spec.token with the server's authenticators,
// for spec.audiences (the server's own when empty), as upstream:
//
//   - an audience-aware authenticator (service account tokens) accepts a
//     token issued for one of them and reports those it was issued for;
//   - the others (token file, the loopback token) are valid only for the
//     server's own audiences, and report those of them that were asked;
//   - a token no authenticator accepts gives authenticated=false, with the
//     authenticator's error in status.error.
func (s *Server) tokenReview(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	r := obj.(*authenticationv1.TokenReview)
	if r.Spec.Token == "" {
		return nil, apierrors.NewBadRequest("token is required for TokenReview in authentication")
	}
	auds := r.Spec.Audiences
	if len(auds) == 0 {
		auds = s.cfg.APIAudiences
	}
	r.Status = authenticationv1.TokenReviewStatus{}
	if s.cfg.Authenticator == nil {
		return r, nil
	}
	// The authenticators read requests: the token is handed to them as a
	// bearer token of a request that carries nothing else (no TLS, so no
	// client certificate is taken from the reviewer's connection).
	req, err := http.NewRequestWithContext(WithAudiences(ctx, auds), http.MethodPost, "/", nil)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.Spec.Token)
	u, ok, err := s.cfg.Authenticator.AuthenticateRequest(req)
	if err != nil {
		r.Status.Error = err.Error()
		return r, nil
	}
	if !ok || u == nil {
		return r, nil
	}
	accepted := u.Audiences
	if accepted == nil {
		// An audience-agnostic authenticator: its tokens are for the
		// server's own audiences.
		accepted = intersect(s.cfg.APIAudiences, auds)
		if len(s.cfg.APIAudiences) > 0 && len(accepted) == 0 {
			return r, nil
		}
	}
	if len(auds) > 0 && len(intersect(auds, accepted)) == 0 {
		return nil, apierrors.NewInternalError(errors.New("error validating audience"))
	}
	info := authenticationv1.UserInfo{Username: u.Name, UID: u.UID, Groups: u.Groups}
	if len(u.Extra) > 0 {
		info.Extra = map[string]authenticationv1.ExtraValue{}
		for k, v := range u.Extra {
			info.Extra[k] = v
		}
	}
	r.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: info, Audiences: accepted}
	return r, nil
}

// intersect is the members of a that b holds, in a's order.
func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		for _, y := range b {
			if x == y {
				out = append(out, x)
				break
			}
		}
	}
	return out
}
