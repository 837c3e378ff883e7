package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Names of the leaves Ensure keeps, as Renew and Leaves report them. A
// leaf's name is its certificate's path below Config.Dir without ".crt";
// IssueClient and IssueServing add theirs ("kubelet/serving", ...) the
// same way.
const (
	LeafServing       = "serving"
	LeafAdmin         = "admin"
	LeafKubeletClient = "apiserver-kubelet-client"
	LeafFrontProxy    = "front-proxy-client"
	LeafEtcdServer    = "etcd/server"
	LeafEtcdClient    = "etcd/client"
)

// leaf is one certificate the bundle keeps current.
type leaf struct {
	name              string
	ca                *keyPair
	certFile, keyFile string
	spec              leafSpec
	cur               *keyPair // the pair on disk as last read or written
}

// keep runs ensureLeaf for the leaf at certFile and remembers it (once)
// among the leaves Renew renews.
func (b *Bundle) keep(ca *keyPair, certFile, keyFile string, spec leafSpec, now time.Time) (*keyPair, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, _, err := ensureLeaf(ca, certFile, keyFile, spec, b.lt, now)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(b.leaves, func(l *leaf) bool { return l.certFile == certFile })
	if i < 0 {
		b.leaves = append(b.leaves, &leaf{name: b.LeafName(certFile), certFile: certFile, keyFile: keyFile})
		i = len(b.leaves) - 1
	}
	l := b.leaves[i]
	l.ca, l.spec, l.keyFile, l.cur = ca, spec, keyFile, p
	return p, nil
}

// LeafName is the name Renew, Leaves and TLSCertificate know the leaf
// whose certificate is certFile by.
func (b *Bundle) LeafName(certFile string) string {
	name := strings.TrimSuffix(certFile, ".crt")
	if rel, err := filepath.Rel(b.dir, name); err == nil && !strings.HasPrefix(rel, "..") {
		name = rel
	}
	return filepath.ToSlash(name)
}

// Renewal is a leaf whose certificate Renew found replaced.
type Renewal struct {
	Name string
	// Reason is why it was reissued ("expires soon", "missing", ...), or
	// ReasonReplaced when something other than the bundle replaced it.
	Reason string
	// Cert is the certificate in force now.
	Cert *x509.Certificate
}

// ReasonReplaced is Renewal.Reason of a leaf whose files something other
// than the bundle replaced (an operator, a second process).
const ReasonReplaced = "replaced on disk"

// Renew re-reads every leaf the bundle keeps and reissues those that are
// due (see renewTime) or otherwise stale, as Ensure does on start: a leaf
// renewed for its age keeps its key and only its certificate file is
// replaced, atomically. It returns the leaves whose certificate changed
// since the last look, in the order they were first kept, including
// those changed on disk by someone else, so that the caller hands every
// consumer what the files hold. It goes on past a leaf that fails and
// returns their errors joined; a failed leaf is tried again next time.
// It first ends the overlap of a CA rotation whose time has come (see
// rotate.go): TrustPEM tells.
func (b *Bundle) Renew(now time.Time) ([]Renewal, error) {
	if b == nil || b.ca == nil {
		return nil, errors.New("pki: Renew: bundle has no CA key; obtain it from Ensure")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var (
		out  []Renewal
		errs []error
	)
	if _, err := b.endOverlapIfDue(now); err != nil {
		errs = append(errs, fmt.Errorf("ending the CA overlap: %w", err))
	}
	for _, l := range b.leaves {
		p, reason, err := ensureLeaf(l.ca, l.certFile, l.keyFile, l.spec, b.lt, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("renewing %s: %w", l.name, err))
			continue
		}
		if reason == "" && l.cur != nil && p.cert.Equal(l.cur.cert) {
			continue
		}
		if reason == "" {
			reason = ReasonReplaced
		}
		l.cur = p
		out = append(out, Renewal{Name: l.name, Reason: reason, Cert: p.cert})
	}
	return out, errors.Join(errs...)
}

// LeafStatus is what Leaves says of one leaf.
type LeafStatus struct {
	Name string
	// NotAfter is when its certificate in force expires; RenewAt when
	// Renew will reissue it (the zero time when it can not be renewed
	// before its CA is replaced).
	NotAfter, RenewAt time.Time
}

// Leaves lists the leaves the bundle keeps, in the order they were first
// kept, as of the last Ensure, Issue* or Renew.
func (b *Bundle) Leaves() []LeafStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]LeafStatus, 0, len(b.leaves))
	for _, l := range b.leaves {
		s := LeafStatus{Name: l.name, NotAfter: l.cur.cert.NotAfter}
		if renewable(l.cur.cert, l.ca) {
			s.RenewAt = renewTime(l.cur.cert, b.lt.renewBefore)
		}
		out = append(out, s)
	}
	return out
}

// NextCheck is when Renew should run next after now: when the first leaf
// falls due or a CA overlap ends, and no later than the check interval
// (an hour; a tenth of Config.LeafValidity when that is shorter), so
// that files replaced behind the bundle's back are noticed too.
func (b *Bundle) NextCheck(now time.Time) time.Time {
	next := now.Add(b.lt.check)
	if t := b.trust.Load(); t != nil && t.cross != nil && t.cross.NotAfter.Before(next) {
		next = t.cross.NotAfter
	}
	for _, s := range b.Leaves() {
		if !s.RenewAt.IsZero() && s.RenewAt.Before(next) {
			next = s.RenewAt
		}
	}
	if next.Before(now) {
		next = now
	}
	return next
}

// Validity is the lifetime of the leaves the bundle issues.
func (b *Bundle) Validity() time.Duration { return b.lt.validity }

// TLSCertificate returns the named leaf's certificate and key in force,
// for a tls.Config's GetCertificate or GetClientCertificate. During the
// overlap of a CA rotation, a leaf of the new CA comes with the cross
// certificate, for peers that trust only the previous CA.
func (b *Bundle) TLSCertificate(name string) (*tls.Certificate, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.leaves {
		if l.name != name {
			continue
		}
		chain := [][]byte{l.cur.cert.Raw}
		if t := b.trust.Load(); l.ca == b.ca && t.cross != nil && bytes.Equal(l.cur.cert.RawIssuer, b.ca.cert.RawSubject) {
			chain = append(chain, t.cross.Raw)
		}
		return &tls.Certificate{Certificate: chain, PrivateKey: l.cur.key, Leaf: l.cur.cert}, nil
	}
	return nil, fmt.Errorf("pki: no leaf %q", name)
}
