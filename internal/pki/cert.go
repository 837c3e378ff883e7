package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"slices"
	"strings"
	"time"
)

const (
	caValidity = 10 * 365 * 24 * time.Hour
	// DefaultLeafValidity is how long a leaf certificate lives unless
	// Config.LeafValidity says otherwise.
	DefaultLeafValidity = 365 * 24 * time.Hour
	// maxRenewBefore: a leaf is renewed at the latest this long before it
	// expires (k3s renews 90 days ahead too).
	maxRenewBefore = 90 * 24 * time.Hour
	// maxBackdate covers clocks that are a little behind the issuer's.
	maxBackdate = time.Hour
	// maxCheckInterval bounds how far ahead NextCheck lies.
	maxCheckInterval = time.Hour
)

// lifetimes says how long the leaves of a Bundle live and when they are
// renewed. Everything scales with the validity, so that a test may make
// leaves live for a minute and see them renewed like a year's.
type lifetimes struct {
	// validity is a new leaf's lifetime from now (NotBefore lies
	// backdate earlier).
	validity time.Duration
	// renewBefore: a leaf is renewed when less than this is left, if that
	// comes before two thirds of its lifetime have passed (see
	// renewTime): 90 days of a year, a quarter of shorter validities.
	renewBefore time.Duration
	backdate    time.Duration
	// check is how often Renew should look at the leaves at least.
	check time.Duration
}

func newLifetimes(validity time.Duration) lifetimes {
	if validity <= 0 {
		validity = DefaultLeafValidity
	}
	return lifetimes{
		validity:    validity,
		renewBefore: min(maxRenewBefore, validity/4),
		backdate:    min(maxBackdate, validity/10),
		check:       min(maxCheckInterval, validity/10),
	}
}

// renewTime is when leaf c is due for renewal: once two thirds of its
// lifetime (NotBefore to NotAfter) have passed, or renewBefore ahead of
// its expiry if that is sooner. A year's leaf (with its hour of backdate)
// is renewed 243 days after issue, with 122 days left; a 90 s leaf 57 s
// after issue, with 33 s left. Upstream's kubelet renews at a random
// point between 70 and 90 % of the lifetime; kubeadm only on demand.
func renewTime(c *x509.Certificate, renewBefore time.Duration) time.Time {
	t := c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) / 3 * 2)
	if early := c.NotAfter.Add(-renewBefore); early.Before(t) {
		t = early
	}
	return t
}

// renewable reports whether reissuing c under ca would extend it: a leaf
// already cut short at the CA's own expiry is not renewed again and again
// (the CA has to be replaced first).
func renewable(c *x509.Certificate, ca *keyPair) bool {
	return c.NotAfter.Before(ca.cert.NotAfter)
}

// keyPair is a certificate with its private key and the PEM it was read
// from or written as.
type keyPair struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

// leafSpec is what a leaf certificate must say. A stored leaf that differs
// in any of these is reissued.
type leafSpec struct {
	commonName string
	orgs       []string
	dnsNames   []string
	ips        []net.IP
	usages     []x509.ExtKeyUsage
}

func newKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ECDSA P-256 key: %w", err)
	}
	return k, nil
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil // never zero
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// newCA creates a self-signed CA certificate and key.
func newCA(commonName string, now time.Time) (*keyPair, []byte, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-maxBackdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate %q: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse new certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return &keyPair{cert: cert, key: key, certPEM: encodeCert(der)}, keyPEM, nil
}

// issue creates a leaf certificate for spec signed by ca, living lt, for
// key, or for a new key when key is nil. keyPEM is nil when key was given:
// the caller keeps the key file it has.
func issue(ca *keyPair, spec leafSpec, lt lifetimes, key crypto.Signer, now time.Time) (p *keyPair, keyPEM []byte, err error) {
	if key == nil {
		k, err := newKey()
		if err != nil {
			return nil, nil, err
		}
		if keyPEM, err = encodeKey(k); err != nil {
			return nil, nil, err
		}
		key = k
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(lt.validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: spec.commonName, Organization: spec.orgs},
		NotBefore:             now.Add(-lt.backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           spec.usages,
		BasicConstraintsValid: true,
		DNSNames:              spec.dnsNames,
		IPAddresses:           spec.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate %q: %w", spec.commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse new certificate: %w", err)
	}
	return &keyPair{cert: cert, key: key, certPEM: encodeCert(der)}, keyPEM, nil
}

// errMissing: neither file of a pair exists.
var errMissing = errors.New("missing")

// readPair loads a certificate and its key. It returns errMissing when
// neither file exists and another error when only one does or when they do
// not parse or do not belong together.
func readPair(certFile, keyFile string) (*keyPair, error) {
	certPEM, cerr := os.ReadFile(certFile)
	keyPEM, kerr := os.ReadFile(keyFile)
	switch {
	case errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist):
		return nil, errMissing
	case cerr != nil:
		return nil, fmt.Errorf("read %s: %w", certFile, cerr)
	case kerr != nil:
		return nil, fmt.Errorf("read %s: %w", keyFile, kerr)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certFile, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%s does not hold the key of %s", keyFile, certFile)
	}
	return &keyPair{cert: cert, key: key, certPEM: certPEM}, nil
}

// parseCert returns the first certificate in PEM data.
func parseCert(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM certificate")
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse certificate: %w", err)
			}
			return c, nil
		}
	}
}

// parseKey accepts SEC1 ("EC PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") and
// PKCS#8 ("PRIVATE KEY") keys, so an operator-provided CA may use any of
// them.
func parseKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM private key")
		}
		var (
			k   any
			err error
		)
		switch b.Type {
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse private key: %w", err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("private key of type %T cannot sign", k)
		}
		return s, nil
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

// Reasons staleReason gives. Only reasonExpiresSoon keeps the key: the
// certificate is what ages, and a reader that loads the certificate and
// the key one after the other (etcd per handshake, client-go's file
// reloading) can not then see a certificate with another one's key.
const (
	reasonExpiresSoon = "expires soon"
	// reasonOtherCA keeps the key too: a CA rotation reissues every leaf
	// at once (RotateCA).
	reasonOtherCA = "not signed by the current CA"
)

// staleReason says why a stored leaf must be reissued, or "" when it may
// be kept.
func staleReason(p *keyPair, ca *keyPair, spec leafSpec, lt lifetimes, now time.Time) string {
	c := p.cert
	if err := c.CheckSignatureFrom(ca.cert); err != nil || !bytes.Equal(c.RawIssuer, ca.cert.RawSubject) {
		return reasonOtherCA
	}
	if now.Before(c.NotBefore) {
		return "not yet valid"
	}
	if c.Subject.CommonName != spec.commonName || !sameStrings(c.Subject.Organization, spec.orgs) {
		return "subject changed"
	}
	if !sameStrings(lower(c.DNSNames), lower(spec.dnsNames)) || !sameStrings(ipStrings(c.IPAddresses), ipStrings(spec.ips)) {
		return "subject alternative names changed"
	}
	if !slices.Equal(sortedUsages(c.ExtKeyUsage), sortedUsages(spec.usages)) {
		return "key usage changed"
	}
	if !now.Before(renewTime(c, lt.renewBefore)) && renewable(c, ca) {
		return reasonExpiresSoon
	}
	return ""
}

func sameStrings(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func lower(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strings.ToLower(v)
	}
	return out
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

func sortedUsages(u []x509.ExtKeyUsage) []x509.ExtKeyUsage {
	u = slices.Clone(u)
	slices.Sort(u)
	return slices.Compact(u)
}
