// Package serviceaccount issues and verifies service account tokens: JWTs
// signed with the cluster's service account key (ES256), carrying upstream's
// claims (iss, sub, aud, exp, and the kubernetes.io claim naming the
// namespace, the service account and the object the token is bound to).
// The API server issues them through serviceaccounts/<name>/token and
// accepts them as bearer tokens; a token dies with the account or the
// object it is bound to.
package serviceaccount

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/google/uuid"
)

// DefaultIssuer is upstream's default --service-account-issuer for a
// cluster named cluster.local; it is also the default API audience.
const DefaultIssuer = "https://kubernetes.default.svc.cluster.local"

// Claims are a token's claims, in upstream's JSON shape.
type Claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  []string `json:"aud"`
	Expiry    int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	ID        string   `json:"jti,omitempty"`
	Kube      Private  `json:"kubernetes.io"`
}

// Private is the kubernetes.io claim.
type Private struct {
	Namespace      string `json:"namespace"`
	ServiceAccount Ref    `json:"serviceaccount"`
	Pod            *Ref   `json:"pod,omitempty"`
	Secret         *Ref   `json:"secret,omitempty"`
	Node           *Ref   `json:"node,omitempty"`
}

// Ref names an object and its uid.
type Ref struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// Subject is the user name of a service account: system:serviceaccount:ns:name.
func Subject(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// Signer signs tokens.
type Signer struct {
	Key    *ecdsa.PrivateKey
	Issuer string
	// KeyID names the key in the token header (a hash of the public key).
	keyID string
}

// NewSigner returns a signer for key under issuer.
func NewSigner(key *ecdsa.PrivateKey, issuer string) (*Signer, error) {
	if key == nil {
		return nil, errors.New("service account signer: no key")
	}
	kid, err := keyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	return &Signer{Key: key, Issuer: issuer, keyID: kid}, nil
}

// Sign fills the registered claims (issuer, subject, times, id) for a token
// valid for ttl from now, and returns the signed token.
func (s *Signer) Sign(c Claims, ttl time.Duration, now time.Time) (string, error) {
	c.Issuer = s.Issuer
	c.Subject = Subject(c.Kube.Namespace, c.Kube.ServiceAccount.Name)
	c.IssuedAt, c.NotBefore = now.Unix(), now.Unix()
	c.Expiry = now.Add(ttl).Unix()
	c.ID = uuid.NewString()
	header, err := json.Marshal(map[string]string{"alg": "ES256", "kid": s.keyID})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signing := b64(header) + "." + b64(payload)
	sum := sha256.Sum256([]byte(signing))
	r, sv, err := ecdsa.Sign(rand.Reader, s.Key, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	return signing + "." + b64(sig), nil
}

// ErrNotOurs is returned for a bearer token that is not a JWT of this
// issuer, so other authenticators may try it.
var ErrNotOurs = errors.New("not a service account token of this issuer")

// Verify checks a token's signature, issuer, times and audience (one of
// audiences) and returns its claims. A token that is not a JWT from this
// issuer gives ErrNotOurs.
func Verify(token string, pub *ecdsa.PublicKey, issuer string, audiences []string, now time.Time) (*Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, ErrNotOurs
	}
	payload, err := unb64(parts[1])
	if err != nil {
		return nil, ErrNotOurs
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil || c.Issuer != issuer {
		return nil, ErrNotOurs
	}
	header, err := unb64(parts[0])
	if err != nil {
		return nil, errors.New("malformed token header")
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(header, &h); err != nil || h.Alg != "ES256" {
		return nil, errors.New("unsupported token signature algorithm")
	}
	sig, err := unb64(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, errors.New("malformed token signature")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, errors.New("invalid token signature")
	}
	const leeway = 60 // seconds of clock skew, as upstream allows
	t := now.Unix()
	if t > c.Expiry+leeway {
		return nil, errors.New("token has expired")
	}
	if c.NotBefore > t+leeway {
		return nil, errors.New("token is not valid yet")
	}
	if !intersects(c.Audience, audiences) {
		return nil, errors.New("token audiences are not accepted by this server")
	}
	if c.Kube.Namespace == "" || c.Kube.ServiceAccount.Name == "" || c.Subject != Subject(c.Kube.Namespace, c.Kube.ServiceAccount.Name) {
		return nil, errors.New("token does not name a service account")
	}
	return &c, nil
}

func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func keyID(pub *ecdsa.PublicKey) (string, error) {
	der, err := pub.ECDH()
	if err != nil {
		return "", fmt.Errorf("service account key: %w", err)
	}
	sum := sha256.Sum256(der.Bytes())
	return b64(sum[:]), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
