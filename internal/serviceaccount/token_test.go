package serviceaccount

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := NewSigner(key, DefaultIssuer)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	claims := Claims{Audience: []string{"api"}, Kube: Private{Namespace: "ns", ServiceAccount: Ref{Name: "sa", UID: "u1"}, Pod: &Ref{Name: "p", UID: "u2"}}}
	tok, err := s.Sign(claims, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	tamper := func(tok string) string {
		parts := strings.Split(tok, ".")
		body, _ := unb64(parts[1])
		parts[1] = b64([]byte(strings.Replace(string(body), `"sa"`, `"admin"`, 1)))
		return strings.Join(parts, ".")
	}
	tests := []struct {
		name      string
		token     string
		pub       *ecdsa.PublicKey
		audiences []string
		at        time.Time
		wantErr   string
		notOurs   bool
	}{
		{name: "valid", token: tok, pub: &key.PublicKey, audiences: []string{"api"}, at: now},
		{name: "expired", token: tok, pub: &key.PublicKey, audiences: []string{"api"}, at: now.Add(2 * time.Hour), wantErr: "expired"},
		{name: "wrong audience", token: tok, pub: &key.PublicKey, audiences: []string{"other"}, at: now, wantErr: "audiences"},
		{name: "other key", token: tok, pub: &other.PublicKey, audiences: []string{"api"}, at: now, wantErr: "signature"},
		{name: "tampered", token: tamper(tok), pub: &key.PublicKey, audiences: []string{"api"}, at: now, wantErr: "signature"},
		{name: "not a jwt", token: "abc123", pub: &key.PublicKey, audiences: []string{"api"}, at: now, notOurs: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Verify(tt.token, tt.pub, DefaultIssuer, tt.audiences, tt.at)
			switch {
			case tt.notOurs:
				if !errors.Is(err, ErrNotOurs) {
					t.Fatalf("want ErrNotOurs, got %v", err)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want error containing %q, got %v", tt.wantErr, err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if c.Subject != "system:serviceaccount:ns:sa" || c.Kube.Pod == nil || c.Kube.Pod.UID != "u2" || c.Expiry != now.Add(time.Hour).Unix() {
					t.Fatalf("claims: %+v", c)
				}
			}
		})
	}
}
