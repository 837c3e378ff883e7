package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync/atomic"
)

// TrustingClients returns a copy of base whose handshakes verify client
// certificates against the pool pool returns at that moment (for
// Bundle.TrustPool, which a CA rotation replaces): a tls.Config reads
// ClientCAs once, so the copy hands each handshake, through
// GetConfigForClient, a clone of base with the pool in force, made once
// per pool. base should name its NextProtos: net/http adds "h2" to the
// outer config only.
func TrustingClients(base *tls.Config, pool func() *x509.CertPool) *tls.Config {
	type perPool struct {
		pool *x509.CertPool
		cfg  *tls.Config
	}
	var cur atomic.Pointer[perPool]
	inner := base.Clone()
	out := base.Clone()
	out.ClientCAs = pool()
	out.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		p := pool()
		if c := cur.Load(); c != nil && c.pool == p {
			return c.cfg, nil
		}
		cfg := inner.Clone()
		cfg.ClientCAs = p
		cur.Store(&perPool{pool: p, cfg: cfg})
		return cfg, nil
	}
	return out
}

// VerifyServer checks a server's certificate chain, as a TLS client
// does, against the roots pool returns at that moment: for a client
// tls.Config with InsecureSkipVerify whose VerifyConnection calls it,
// because a tls.Config reads RootCAs once and a CA rotation replaces the
// trust while the process runs.
func VerifyServer(cs tls.ConnectionState, serverName string, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		DNSName:       serverName,
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}
