package serviceaccount

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/skiff-io/skiff/internal/apiserver"
)

// LookupUID returns the uid of an object (resource "serviceaccounts",
// "pods", "secrets" or "nodes"; namespace empty for nodes), or an error if
// it does not exist.
type LookupUID func(ctx context.Context, resource, namespace, name string) (string, error)

// Authenticator accepts service account tokens as bearer tokens.
type Authenticator struct {
	Public    *ecdsa.PublicKey
	Issuer    string
	Audiences []string
	Lookup    LookupUID
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (a *Authenticator) AuthenticateRequest(r *http.Request) (*apiserver.User, bool, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return nil, false, nil
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	// A TokenReview asks for its own audiences; a request is checked
	// against the server's.
	auds := a.Audiences
	if want, ok := apiserver.AudiencesFrom(r.Context()); ok {
		auds = want
	}
	c, err := Verify(token, a.Public, a.Issuer, auds, now())
	if errors.Is(err, ErrNotOurs) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	ctx := r.Context()
	check := func(resource, namespace string, ref *Ref) error {
		if ref == nil {
			return nil
		}
		uid, err := a.Lookup(ctx, resource, namespace, ref.Name)
		if err != nil {
			return fmt.Errorf("%s %q bound to the token: %w", resource, ref.Name, err)
		}
		if ref.UID != "" && uid != ref.UID {
			return fmt.Errorf("%s %q bound to the token was deleted and recreated (uid %s, token has %s)", resource, ref.Name, uid, ref.UID)
		}
		return nil
	}
	ns := c.Kube.Namespace
	if err := check("serviceaccounts", ns, &c.Kube.ServiceAccount); err != nil {
		return nil, false, err
	}
	if err := check("pods", ns, c.Kube.Pod); err != nil {
		return nil, false, err
	}
	if err := check("secrets", ns, c.Kube.Secret); err != nil {
		return nil, false, err
	}
	// A pod-bound token names its pod's node for information, as
	// upstream's; only a token bound to the node alone depends on it.
	if c.Kube.Pod == nil {
		if err := check("nodes", "", c.Kube.Node); err != nil {
			return nil, false, err
		}
	}
	return &apiserver.User{
		Name:      c.Subject,
		UID:       c.Kube.ServiceAccount.UID,
		Groups:    []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		Extra:     extra(c),
		Audiences: intersection(c.Audience, auds),
	}, true, nil
}

// The user extra keys upstream sets for a service account token: the pod
// and node it is bound to, and the token's own id, which audit logs and
// SelfSubjectReview show so that one credential can be traced.
const (
	ExtraPodName      = "authentication.kubernetes.io/pod-name"
	ExtraPodUID       = "authentication.kubernetes.io/pod-uid"
	ExtraNodeName     = "authentication.kubernetes.io/node-name"
	ExtraNodeUID      = "authentication.kubernetes.io/node-uid"
	ExtraCredentialID = "authentication.kubernetes.io/credential-id"
)

func extra(c *Claims) map[string][]string {
	x := map[string][]string{}
	put := func(key, v string) {
		if v != "" {
			x[key] = []string{v}
		}
	}
	if p := c.Kube.Pod; p != nil {
		put(ExtraPodName, p.Name)
		put(ExtraPodUID, p.UID)
	}
	if n := c.Kube.Node; n != nil {
		put(ExtraNodeName, n.Name)
		put(ExtraNodeUID, n.UID)
	}
	if c.ID != "" {
		put(ExtraCredentialID, "JTI="+c.ID)
	}
	if len(x) == 0 {
		return nil
	}
	return x
}

// intersection is the members of want that have holds, in want's order.
func intersection(have, want []string) []string {
	var out []string
	for _, w := range want {
		for _, h := range have {
			if w == h {
				out = append(out, w)
				break
			}
		}
	}
	return out
}
