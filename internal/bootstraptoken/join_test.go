package bootstraptoken

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"
)

// testdata/ca.crt's hash, computed apart from Go with
//
//	openssl x509 -pubkey -noout -in ca.crt | openssl pkey -pubin -outform der | sha256sum
const testCAHash = "sha256:c1c88f4ffcf8b9e70f61c8fc470d53b58b9ae941bfeaad3bfdffced33c13b363"

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCAHash(t *testing.T) {
	ca := readCert(t, "testdata/ca.crt")
	if got := CAHash(ca); got != testCAHash {
		t.Errorf("CAHash = %s, want %s (openssl)", got, testCAHash)
	}
	// And as kubeadm's pubkeypin computes it, from the public key
	// marshalled again.
	for _, c := range []*x509.Certificate{ca, newCA(t, "other", nil, nil).cert} {
		der, err := x509.MarshalPKIXPublicKey(c.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(der)
		if want := "sha256:" + hex.EncodeToString(sum[:]); CAHash(c) != want {
			t.Errorf("%s: CAHash = %s, want %s", c.Subject.CommonName, CAHash(c), want)
		}
	}
}

func TestJoinRoundTrip(t *testing.T) {
	tok, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	s := Join(testCAHash, tok)
	if want := "K10c1c88f4ffcf8b9e70f61c8fc470d53b58b9ae941bfeaad3bfdffced33c13b363::" + tok.String(); s != want {
		t.Fatalf("Join = %q, want %q", s, want)
	}
	h, got, err := ParseJoin(s)
	if err != nil || h != testCAHash || got != tok {
		t.Fatalf("ParseJoin(%q) = %q, %+v, %v", s, h, got, err)
	}
	// Upper-case hex is read as lower-case.
	if h, _, err := ParseJoin(strings.ToUpper(s[:67]) + s[67:]); err != nil || h != testCAHash {
		t.Errorf("upper-case hash: %q, %v", h, err)
	}
}

func TestParseJoinMalformed(t *testing.T) {
	hexHash := strings.TrimPrefix(testCAHash, "sha256:")
	tests := []struct{ name, in, want string }{
		{"empty", "", "does not start with K10"},
		{"bare token", "abcdef.0123456789abcdef", "does not start with K10"},
		{"k3s server password", "K10" + hexHash + "::server:secretpassword", "token after '::'"},
		{"no separator", "K10" + hexHash + "abcdef.0123456789abcdef", "no '::'"},
		{"single colon", "K10" + hexHash + ":abcdef.0123456789abcdef", "no '::'"},
		{"short hash", "K10abc::abcdef.0123456789abcdef", "CA hash is not 64 hex digits"},
		{"not hex", "K10" + strings.Repeat("g", 64) + "::abcdef.0123456789abcdef", "CA hash is not 64 hex digits"},
		{"kubeadm prefix inside", "K10sha256:" + hexHash + "::abcdef.0123456789abcdef", "CA hash is not 64 hex digits"},
		{"short secret", "K10" + hexHash + "::abcdef.0123456789abcde", "token after '::'"},
		{"trailing text", "K10" + hexHash + "::abcdef.0123456789abcdef\n", "token after '::'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseJoin(tt.in)
			if !errors.Is(err, ErrMalformedJoin) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseJoin(%q) = %v, want ErrMalformedJoin saying %q", tt.in, err, tt.want)
			}
			if strings.Contains(err.Error(), "0123456789abcde") {
				t.Errorf("the error quotes the secret: %v", err)
			}
		})
	}
}

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// newCA makes a CA; with parent it is signed by parent, with key it
// reuses that key (a cross-signed certificate).
func newCA(t *testing.T, cn string, parent *testCA, key *ecdsa.PrivateKey) *testCA {
	t.Helper()
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
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
	return &testCA{cert: c, key: key}
}

func newLeaf(t *testing.T, ca *testCA) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// During a CA rotation the server presents its leaf (of the new CA) with
// the new CA cross-signed by the old; cluster-info holds both CAs. A join
// string of either CA verifies against what it sees.
func TestVerifyCA(t *testing.T) {
	oldCA := newCA(t, "old", nil, nil)
	newCA_ := newCA(t, "new", nil, nil)
	cross := newCA(t, "new", oldCA, newCA_.key)
	leaf := newLeaf(t, newCA_)
	other := newCA(t, "other", nil, nil)

	served := []*x509.Certificate{leaf, cross.cert}
	bundle := []*x509.Certificate{newCA_.cert, oldCA.cert}
	tests := []struct {
		name  string
		hash  string
		certs []*x509.Certificate
		ok    bool
	}{
		{"new CA in the served chain (cross-signed, same key)", CAHash(newCA_.cert), served, true},
		{"new CA in the bundle", CAHash(newCA_.cert), bundle, true},
		{"old CA in the bundle", CAHash(oldCA.cert), bundle, true},
		{"bare hex", strings.TrimPrefix(CAHash(oldCA.cert), "sha256:"), bundle, true},
		{"old CA is not in the served chain", CAHash(oldCA.cert), served, false},
		{"another CA", CAHash(other.cert), append(served, bundle...), false},
		{"nothing presented", CAHash(newCA_.cert), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyCA(tt.hash, tt.certs)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrCAMismatch) {
				t.Fatalf("VerifyCA = %v, want ErrCAMismatch", err)
			}
			want := "the server's CA does not match the join token's hash (sha256:" + strings.TrimPrefix(tt.hash, "sha256:") + ")"
			if err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		})
	}
	if err := VerifyCA("sha256:abc", bundle); err == nil || errors.Is(err, ErrCAMismatch) {
		t.Errorf("a malformed hash: %v", err)
	}
}

func TestServerJoin(t *testing.T) {
	hash := "sha256:" + strings.Repeat("ab", 32)
	join := ServerJoin(hash, "0123456789abcdef0123")
	gotHash, secret, err := ParseServerJoin(join)
	if err != nil || gotHash != hash || secret != "0123456789abcdef0123" {
		t.Fatalf("ParseServerJoin(%q) = %q, %q, %v", join, gotHash, secret, err)
	}
	agentJoin := Join(hash, Token{ID: "abcdef", Secret: "0123456789abcdef"})
	for _, bad := range []string{"", "server:0123456789abcdef", agentJoin, "K10" + strings.Repeat("ab", 32) + "::server:short", "K10zz::server:0123456789abcdef"} {
		_, _, err := ParseServerJoin(bad)
		if !errors.Is(err, ErrMalformedJoin) {
			t.Errorf("ParseServerJoin(%q): %v, want ErrMalformedJoin", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "0123456789abcdef") {
			t.Errorf("ParseServerJoin(%q): the error repeats the secret: %v", bad, err)
		}
	}
}
