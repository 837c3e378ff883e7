package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/test/framework"
)

// Service account issuer discovery, as a relying party uses it: with a
// service account's own token, read the discovery document at the
// token's issuer, then the key set it names, and verify the token's
// signature with the key its header names. Without credentials: 401.
func TestServiceAccountIssuerDiscovery(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithAuthorization("Node,RBAC"))
	ctx := ctxT(t)
	mustNamespace(t, c.Client, "oidc")
	if _, err := c.Client.CoreV1().ServiceAccounts("oidc").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "rp"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := c.Client.CoreV1().ServiceAccounts("oidc").CreateToken(ctx, "rp", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"oidc-discovery-test"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := tr.Status.Token
	parts := strings.Split(token, ".")
	var header struct{ Alg, Kid string }
	var claims struct {
		Iss string `json:"iss"`
	}
	decode(t, parts[0], &header)
	decode(t, parts[1], &claims)

	// The service account's token is for another audience: it
	// authenticates only at the relying party. Read as the account would
	// with a token for the API server.
	apiTok, err := c.Client.CoreV1().ServiceAccounts("oidc").CreateToken(ctx, "rp", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(c.Config)
	cfg.BearerToken = apiTok.Status.Token
	get := func(cfg *rest.Config, path string, into any) (int, http.Header) {
		t.Helper()
		rt, err := rest.TransportFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: rt}).Get(cfg.Host + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		return resp.StatusCode, resp.Header
	}
	var doc struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if code, _ := get(cfg, "/.well-known/openid-configuration", &doc); code != http.StatusOK {
		t.Fatalf("discovery document as a service account: %d, want 200", code)
	}
	if doc.Issuer != claims.Iss || len(doc.Algs) != 1 || doc.Algs[0] != header.Alg {
		t.Fatalf("discovery document %+v; the token has issuer %q and alg %q", doc, claims.Iss, header.Alg)
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || u.Scheme != "https" || !strings.HasPrefix(doc.JWKSURI, doc.Issuer+"/") {
		t.Fatalf("jwks_uri %q: want an https URL under the issuer, which pods resolve to the API server", doc.JWKSURI)
	}
	var set struct {
		Keys []struct{ Kty, Crv, Kid, Alg, Use, X, Y string }
	}
	code, h := get(cfg, u.Path, &set)
	if code != http.StatusOK || h.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("key set: %d %q, want 200 application/jwk-set+json", code, h.Get("Content-Type"))
	}
	verified := false
	for _, k := range set.Keys {
		if k.Kid != header.Kid {
			continue
		}
		if k.Kty != "EC" || k.Crv != "P-256" || k.Alg != "ES256" || k.Use != "sig" {
			t.Fatalf("key %+v: want an EC P-256 ES256 signing key", k)
		}
		pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(unb64(t, k.X)), Y: new(big.Int).SetBytes(unb64(t, k.Y))}
		sig := unb64(t, parts[2])
		sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		verified = len(sig) == 64 && ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	}
	if !verified {
		t.Fatalf("no key of the set (%d keys) with kid %q verifies the token", len(set.Keys), header.Kid)
	}
	if code, _ := get(rest.AnonymousClientConfig(c.Config), "/openid/v1/jwks", &set); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Fatalf("key set without credentials: %d, want 401 or 403", code)
	}
}

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode(t *testing.T, part string, into any) {
	t.Helper()
	if err := json.Unmarshal(unb64(t, part), into); err != nil {
		t.Fatal(err)
	}
}
