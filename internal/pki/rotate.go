package pki

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// Replacing the cluster CA while the server runs (RotateCA), with an
// overlap in which both CAs are trusted:
//
//   - A new CA is made and signs every leaf from then on; the leaves the
//     bundle keeps are reissued at the next Renew (keeping their keys).
//   - For the overlap, ca.crt holds the new CA followed by the old one, so
//     that every trust bundle built from it (the admin kubeconfig,
//     kube-root-ca.crt, cluster-info, the servers' client CAs) accepts
//     certificates of either.
//   - ca-cross.crt is the new CA's certificate signed by the old CA,
//     expiring when the overlap ends. Leaves of the new CA are presented
//     with it (TLSCertificate), so a client that trusts only the old CA
//     still verifies the new serving certificate through it.
//   - When the overlap ends (Renew, or Ensure at a start), ca.crt is
//     rewritten with the new CA alone and ca-cross.crt removed: from then
//     on certificates of the old CA are refused.
//
// The files are written so that a crash at any point leaves a CA that
// works: the new key goes to ca.key.next first, then the cross
// certificate and ca.crt, and ca.key last by a rename; ensureCA finishes
// a rotation that stopped between the last two steps.

// trustState is the trust the bundle is in: the CA bundle's PEM
// and pool, and the cross certificate during an overlap.
type trustState struct {
	pem   []byte
	pool  *x509.CertPool
	cross *x509.Certificate // nil outside an overlap
}

func newTrust(pem []byte, cross *x509.Certificate) (*trustState, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("pki: CA bundle holds no certificate")
	}
	return &trustState{pem: pem, pool: pool, cross: cross}, nil
}

// ErrRotationInProgress: RotateCA was asked during the overlap of an
// earlier rotation.
var ErrRotationInProgress = errors.New("a CA rotation is in progress")

// CAStatus is what RotateCA and CA report.
type CAStatus struct {
	// Current signs the leaves; Trusted is every CA whose certificates
	// are accepted (Current first).
	Current *x509.Certificate
	Trusted []*x509.Certificate
	// OverlapEnds is when the previous CA stops being trusted; zero
	// outside an overlap.
	OverlapEnds time.Time
}

// CA describes the cluster CA in force.
func (b *Bundle) CA() CAStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.caStatusLocked()
}

func (b *Bundle) caStatusLocked() CAStatus {
	t := b.trust.Load()
	st := CAStatus{Current: b.ca.cert, Trusted: parseCerts(t.pem)}
	if t.cross != nil {
		st.OverlapEnds = t.cross.NotAfter
	}
	return st
}

// TrustPool holds every CA whose certificates are accepted now: for a
// server's ClientCAs or a client's RootCAs. It is replaced, never
// changed, when the trust changes, so a caller asks for it per use (per
// handshake).
func (b *Bundle) TrustPool() *x509.CertPool { return b.trust.Load().pool }

// TrustPEM is ca.crt as in force: the CA bundle clients are given.
func (b *Bundle) TrustPEM() []byte { return b.trust.Load().pem }

// RotateCA makes a new cluster CA and trusts both it and the current one
// until overlap has passed (at most until the current CA expires). The
// leaves are reissued under the new CA by the next Renew, which the
// caller should run at once. It fails with ErrRotationInProgress during
// the overlap of an earlier rotation.
func (b *Bundle) RotateCA(now time.Time, overlap time.Duration) (CAStatus, error) {
	if b == nil || b.ca == nil {
		return CAStatus{}, errors.New("pki: RotateCA: bundle has no CA key; obtain it from Ensure")
	}
	if overlap <= 0 {
		return CAStatus{}, fmt.Errorf("pki: overlap %v: must be positive", overlap)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.ca
	if t := b.trust.Load(); t.cross != nil {
		return CAStatus{}, fmt.Errorf("%w: %s is trusted until %s", ErrRotationInProgress,
			t.cross.Issuer.CommonName, t.cross.NotAfter.UTC().Format(time.RFC3339))
	}
	next, keyPEM, err := newCA(fmt.Sprintf("%s@%d", CACommonName, now.Unix()), now)
	if err != nil {
		return CAStatus{}, fmt.Errorf("pki: %w", err)
	}
	cross, err := crossSign(next.cert, old, now, now.Add(overlap))
	if err != nil {
		return CAStatus{}, err
	}
	bundlePEM := append(bytes.Clone(next.certPEM), encodeCert(old.cert.Raw)...)
	trust, err := newTrust(bundlePEM, cross)
	if err != nil {
		return CAStatus{}, err
	}
	if err := writeFileAtomic(b.nextCAKeyFile(), keyPEM, 0o600); err != nil {
		return CAStatus{}, fmt.Errorf("pki: %w", err)
	}
	if err := writeFileAtomic(b.crossFile(), encodeCert(cross.Raw), 0o644); err != nil {
		return CAStatus{}, fmt.Errorf("pki: %w", err)
	}
	if err := writeFileAtomic(b.CAFile, bundlePEM, 0o644); err != nil {
		return CAStatus{}, fmt.Errorf("pki: %w", err)
	}
	if err := renameSynced(b.nextCAKeyFile(), b.CAKeyFile); err != nil {
		return CAStatus{}, fmt.Errorf("pki: %w", err)
	}
	b.ca = next
	for _, l := range b.leaves {
		if l.ca == old {
			l.ca = next
		}
	}
	b.trust.Store(trust)
	return b.caStatusLocked(), nil
}

// crossSign issues a certificate for ca's subject and key signed by
// signer, valid until notAfter (at most until signer expires).
func crossSign(ca *x509.Certificate, signer *keyPair, now, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	notAfter = minTime(notAfter, signer.cert.NotAfter)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               ca.Subject,
		SubjectKeyId:          ca.SubjectKeyId,
		NotBefore:             now.Add(-maxBackdate),
		NotAfter:              notAfter,
		KeyUsage:              ca.KeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer.cert, ca.PublicKey, signer.key)
	if err != nil {
		return nil, fmt.Errorf("pki: cross-sign %q: %w", ca.Subject.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (b *Bundle) crossFile() string     { return b.CAFile[:len(b.CAFile)-len(".crt")] + "-cross.crt" }
func (b *Bundle) nextCAKeyFile() string { return b.CAKeyFile + ".next" }

// loadTrust reads the trust in force at a start, after ensureCA: ca.crt,
// with ca-cross.crt while an overlap runs. An overlap that has ended, or
// a cross certificate that is not the CA's (a stale one), is finished.
func (b *Bundle) loadTrust(now time.Time) error {
	bundlePEM, err := os.ReadFile(b.CAFile)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	var cross *x509.Certificate
	data, err := os.ReadFile(b.crossFile())
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("pki: %w", err)
	default:
		c, perr := parseCert(data)
		if perr != nil || !bytes.Equal(c.RawSubject, b.ca.cert.RawSubject) ||
			!publicKeysEqual(c.PublicKey, b.ca.key.Public()) || !now.Before(c.NotAfter) {
			return b.endOverlap()
		}
		cross = c
	}
	t, err := newTrust(bundlePEM, cross)
	if err != nil {
		return err
	}
	b.trust.Store(t)
	return nil
}

// endOverlap stops trusting the previous CA: ca.crt is rewritten with the
// CA alone and the cross certificate removed.
func (b *Bundle) endOverlap() error {
	pem := encodeCert(b.ca.cert.Raw)
	t, err := newTrust(pem, nil)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(b.CAFile, pem, 0o644); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.Remove(b.crossFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pki: %w", err)
	}
	b.trust.Store(t)
	return nil
}

// endOverlapIfDue ends an overlap whose time has come; it reports whether
// it did. b.mu is held.
func (b *Bundle) endOverlapIfDue(now time.Time) (bool, error) {
	t := b.trust.Load()
	if t.cross == nil || now.Before(t.cross.NotAfter) {
		return false, nil
	}
	return true, b.endOverlap()
}

// recoverCAKey finishes a rotation that stopped after ca.crt was written
// and before its key was renamed into place: ca.key.next then holds the
// key of ca.crt's first certificate. A ca.key.next that does not is a
// rotation that stopped earlier and is removed.
func recoverCAKey(certFile, keyFile string) error {
	next := keyFile + ".next"
	keyPEM, err := os.ReadFile(next)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	cert, cerr := parseCert(certPEM)
	key, kerr := parseKey(keyPEM)
	if cerr == nil && kerr == nil && publicKeysEqual(cert.PublicKey, key.Public()) {
		return renameSynced(next, keyFile)
	}
	if err := os.Remove(next); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// parseCerts returns every certificate in PEM data that parses.
func parseCerts(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			return out
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(blk.Bytes); err == nil {
			out = append(out, c)
		}
	}
}
