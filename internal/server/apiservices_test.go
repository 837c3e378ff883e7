package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

func testCertPEM(t *testing.T, cn string, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: notAfter.Add(-time.Hour), NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// Servers with different front-proxy CAs each add theirs to
// requestheader-client-ca-file; none is there twice, none expired.
func TestMergeCerts(t *testing.T) {
	now := time.Now()
	a, b := testCertPEM(t, "a", now.Add(time.Hour)), testCertPEM(t, "b", now.Add(time.Hour))
	expired := testCertPEM(t, "old", now.Add(-time.Minute))
	got := mergeCerts(string(b)+string(expired)+string(a)+"junk", a, now)
	if got != string(a)+string(b) {
		t.Errorf("merged bundle:\n%s\nwant a then b", got)
	}
	if n := strings.Count(mergeCerts(got, a, now), "BEGIN CERTIFICATE"); n != 2 {
		t.Errorf("merging again: %d certificates, want 2", n)
	}
}

// Local APIServices get upstream's priorities: the built-in groups in
// their order, a custom resource's group 1000/100.
func TestLocalPriority(t *testing.T) {
	for _, c := range []struct {
		gv             schema.GroupVersion
		group, version int32
	}{
		{schema.GroupVersion{Version: "v1"}, 18000, 15},
		{schema.GroupVersion{Group: "apps", Version: "v1"}, 17900, 15},
		{schema.GroupVersion{Group: "stable.example.com", Version: "v1beta1"}, 1000, 100},
	} {
		if g, v := localPriority(c.gv); g != c.group || v != c.version {
			t.Errorf("%s: %d/%d, want %d/%d", c.gv, g, v, c.group, c.version)
		}
	}
}
