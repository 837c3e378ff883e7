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
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// renewBefore: a leaf that expires sooner than this is reissued on
	// start (k3s does the same with 90 days).
	renewBefore = 90 * 24 * time.Hour
	// backdate covers clocks that are a little behind the issuer's.
	backdate = time.Hour
)

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
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate %q: %w", commonName, err)
	}
	return finishPair(der, key)
}

// issue creates a leaf certificate for spec signed by ca.
func issue(ca *keyPair, spec leafSpec, now time.Time) (*keyPair, []byte, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(leafValidity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: spec.commonName, Organization: spec.orgs},
		NotBefore:             now.Add(-backdate),
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
	return finishPair(der, key)
}

func finishPair(der []byte, key *ecdsa.PrivateKey) (*keyPair, []byte, error) {
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

// staleReason says why a stored leaf must be reissued, or "" when it may
// be kept.
func staleReason(p *keyPair, ca *keyPair, spec leafSpec, now time.Time) string {
	c := p.cert
	if err := c.CheckSignatureFrom(ca.cert); err != nil || !bytes.Equal(c.RawIssuer, ca.cert.RawSubject) {
		return "not signed by the current CA"
	}
	if now.Before(c.NotBefore) {
		return "not yet valid"
	}
	if now.Add(renewBefore).After(c.NotAfter) && c.NotAfter.Before(ca.cert.NotAfter) {
		return "expires soon"
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
