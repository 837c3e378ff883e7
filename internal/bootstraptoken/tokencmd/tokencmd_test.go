package tokencmd

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-io/skiff/internal/bootstraptoken"
)

func TestPrintTokens(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	specs := []bootstraptoken.Spec{{
		Token:   bootstraptoken.Token{ID: "zzzzzz", Secret: "0123456789abcdef"},
		Expires: now.Add(-time.Minute), Usages: []string{"authentication", "signing"},
	}, {
		Token: bootstraptoken.Token{ID: "abcdef", Secret: "0123456789abcdef"}, Description: "workers in rack 4",
		Expires: now.Add(23*time.Hour + 59*time.Minute), Usages: []string{"authentication", "signing"},
		ExtraGroups: []string{"system:bootstrappers:rack4", "system:bootstrappers:workers"},
	}, {
		Token: bootstraptoken.Token{ID: "forevr", Secret: "aaaaaaaaaaaaaaaa"}, Usages: []string{"authentication"},
	}, {
		Token: bootstraptoken.Token{ID: "nouses", Secret: "bbbbbbbbbbbbbbbb"}, Expires: now.Add(90 * time.Second),
	}}
	var out bytes.Buffer
	if err := printTokens(&out, specs, now); err != nil {
		t.Fatal(err)
	}
	want := `TOKEN                     TTL         EXPIRES                USAGES                   DESCRIPTION         EXTRA GROUPS
abcdef.0123456789abcdef   23h         2030-01-02T11:59:00Z   authentication,signing   workers in rack 4   system:bootstrappers:rack4,system:bootstrappers:workers
forevr.aaaaaaaaaaaaaaaa   <forever>   <never>                authentication           <none>              <none>
nouses.bbbbbbbbbbbbbbbb   1m          2030-01-01T12:01:30Z   <none>                   <none>              <none>
zzzzzz.0123456789abcdef   <invalid>   2030-01-01T11:59:00Z   authentication,signing   <none>              <none>
`
	if d := cmp.Diff(want, out.String()); d != "" {
		t.Errorf("output (-want +got):\n%s", d)
	}
}

func TestTokenID(t *testing.T) {
	for arg, want := range map[string]string{
		"abcdef":                  "abcdef",
		"abcdef.0123456789abcdef": "abcdef",
		"K10" + "c1c88f4ffcf8b9e70f61c8fc470d53b58b9ae941bfeaad3bfdffced33c13b363" + "::abcdef.0123456789abcdef": "abcdef",
		"ABCDEF":                 "",
		"abcdefg":                "",
		"abcdef.0123":            "",
		"bootstrap-token-abcdef": "",
	} {
		id, ok := tokenID(arg)
		if id != want || ok != (want != "") {
			t.Errorf("tokenID(%q) = %q, %v; want %q", arg, id, ok, want)
		}
	}
}

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCert(t *testing.T, cn string, isCA bool, parent *ca) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: isCA, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &ca{cert: c, key: key}
}

// The join string names the CA that signed the serving certificate, even
// when the bundle lists another first.
func TestSigningCA(t *testing.T) {
	a, b := newCert(t, "a", true, nil), newCert(t, "b", true, nil)
	bundle := []*x509.Certificate{a.cert, b.cert}
	for _, tt := range []struct {
		name string
		leaf *x509.Certificate
		want string
	}{
		{"signed by the second", newCert(t, "server", false, b).cert, "b"},
		{"signed by the first", newCert(t, "server", false, a).cert, "a"},
		{"no TLS seen", nil, "a"},
		{"signed by neither", newCert(t, "server", false, newCert(t, "c", true, nil)).cert, "a"},
	} {
		if got := signingCA(bundle, tt.leaf).Subject.CommonName; got != tt.want {
			t.Errorf("%s: CA %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestParseCerts(t *testing.T) {
	a, b := newCert(t, "a", true, nil), newCert(t, "b", true, nil)
	var pemData []byte
	for _, c := range []*x509.Certificate{a.cert, b.cert} {
		pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("x")})...)
	certs, err := parseCerts(append([]byte("\n"), pemData...))
	if err != nil || len(certs) != 2 || certs[0].Subject.CommonName != "a" || certs[1].Subject.CommonName != "b" {
		t.Fatalf("parseCerts: %d certificates, %v", len(certs), err)
	}
}
