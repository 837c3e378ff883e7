package pki

import (
	"os"
	"testing"
	"time"
)

// SigningCA reads the CA the bundle signs with, before and after a
// rotation, and refuses a key that is not the certificate's.
func TestSigningCA(t *testing.T) {
	dir := t.TempDir()
	b, err := Ensure(Config{Dir: dir, LeafValidity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := SigningCA(dir)
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
	cert, key, err = SigningCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.Equal(st.Current) || !publicKeysEqual(cert.PublicKey, key.Public()) {
		t.Fatalf("after rotation SigningCA = %s, want the new CA %s", cert.Subject, st.Current.Subject)
	}

	// A key that is not the CA's (a rotation caught half way).
	other := t.TempDir()
	if _, err := Ensure(Config{Dir: other}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(b.CAKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other+"/ca.key", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := SigningCA(other); err == nil {
		t.Error("SigningCA paired a CA with another CA's key")
	}
	if _, _, err := SigningCA(t.TempDir()); err == nil {
		t.Error("SigningCA of an empty directory succeeded")
	}
}
