package pki

import (
	"testing"
	"time"
)

// SigningCA is the CA the bundle signs with, before and after a rotation.
func TestSigningCA(t *testing.T) {
	b, err := Ensure(Config{Dir: t.TempDir(), LeafValidity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := b.SigningCA()
	if err != nil {
		t.Fatal(err)
	}
	if !cert.Equal(b.CA().Current) || !publicKeysEqual(cert.PublicKey, key.Public()) {
		t.Fatalf("SigningCA = %s, want the bundle's CA %s", cert.Subject, b.CA().Current.Subject)
	}
	st, err := b.RotateCA(time.Now(), 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err = b.SigningCA()
	if err != nil {
		t.Fatal(err)
	}
	if !cert.Equal(st.Current) || !publicKeysEqual(cert.PublicKey, key.Public()) {
		t.Fatalf("after rotation SigningCA = %s, want the new CA %s", cert.Subject, st.Current.Subject)
	}
	if _, _, err := (*Bundle)(nil).SigningCA(); err == nil {
		t.Error("SigningCA of no bundle succeeded")
	}
}
