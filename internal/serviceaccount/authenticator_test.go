package serviceaccount

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A bound token's user carries upstream's extras: the pod and node it is
// bound to and "JTI=<the token's id>" as its credential id.
func TestAuthenticatorExtra(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := NewSigner(key, DefaultIssuer)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	uids := map[string]string{"serviceaccounts/sa": "u1", "pods/p": "u2", "nodes/n": "u3"}
	a := &Authenticator{Public: &key.PublicKey, Issuer: DefaultIssuer, Audiences: []string{"api"},
		Lookup: func(_ context.Context, resource, _, name string) (string, error) {
			if uid, ok := uids[resource+"/"+name]; ok {
				return uid, nil
			}
			return "", errors.New("not found")
		}}
	for _, tt := range []struct {
		name   string
		claims Private
		want   map[string][]string
	}{
		{name: "bound to a pod on a node",
			claims: Private{Namespace: "ns", ServiceAccount: Ref{Name: "sa", UID: "u1"}, Pod: &Ref{Name: "p", UID: "u2"}, Node: &Ref{Name: "n", UID: "u3"}},
			want:   map[string][]string{ExtraPodName: {"p"}, ExtraPodUID: {"u2"}, ExtraNodeName: {"n"}, ExtraNodeUID: {"u3"}}},
		{name: "bound to a pod, naming a node that is gone",
			claims: Private{Namespace: "ns", ServiceAccount: Ref{Name: "sa", UID: "u1"}, Pod: &Ref{Name: "p", UID: "u2"}, Node: &Ref{Name: "gone", UID: "u9"}},
			want:   map[string][]string{ExtraPodName: {"p"}, ExtraPodUID: {"u2"}, ExtraNodeName: {"gone"}, ExtraNodeUID: {"u9"}}},
		{name: "unbound",
			claims: Private{Namespace: "ns", ServiceAccount: Ref{Name: "sa", UID: "u1"}},
			want:   map[string][]string{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := s.Sign(Claims{Audience: []string{"api"}, Kube: tt.claims}, time.Hour, now)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Verify(tok, &key.PublicKey, DefaultIssuer, []string{"api"}, now)
			if err != nil || c.ID == "" {
				t.Fatalf("verify: %v, id %q: want a token with an id", err, c.ID)
			}
			tt.want[ExtraCredentialID] = []string{"JTI=" + c.ID}
			r := httptest.NewRequest("GET", "/api", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			u, ok, err := a.AuthenticateRequest(r)
			if err != nil || !ok {
				t.Fatalf("authenticate: %v %v", ok, err)
			}
			if diff := cmp.Diff(tt.want, u.Extra); diff != "" {
				t.Errorf("extra (-want +got):\n%s", diff)
			}
		})
	}
}
