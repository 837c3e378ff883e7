package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/client-go/kubernetes"
)

// Files of the kubelet's serving credentials, below the agent's state dir.
const (
	servingCertFile = "kubelet-server.crt"
	servingKeyFile  = "kubelet-server.key"
)

// servingCert is the kubelet's serving certificate, signed by the cluster
// CA through a kubernetes.io/kubelet-serving CSR (as upstream's kubelet
// with serverTLSBootstrap), so that the API server can verify the kubelet
// it calls. Until the first one is issued (the request waits for the Node
// to exist: csrapproving checks the names against it) the kubelet serves
// a self-signed one; a restart reuses the kept pair while it has more than
// a fifth of its life left, and it is renewed as the client certificate is.
type servingCert struct {
	cur               atomic.Pointer[tls.Certificate]
	node, ip          string
	certPath, keyPath string
	log               *slog.Logger
	kept              bool
}

// newServingCert loads the kept pair from dir, or starts with fallback.
func newServingCert(dir, node, ip string, caPEM []byte, fallback *tls.Certificate, log *slog.Logger) *servingCert {
	s := &servingCert{node: node, ip: ip, log: log,
		certPath: filepath.Join(dir, servingCertFile), keyPath: filepath.Join(dir, servingKeyFile)}
	if pair := keptCert(s.certPath, s.keyPath, caPEM, node, x509.ExtKeyUsageServerAuth); pair != nil && s.names(pair.Leaf) {
		s.cur.Store(pair)
		s.kept = true
	} else {
		s.cur.Store(fallback)
	}
	return s
}

// names says whether leaf is for this node's name and address.
func (s *servingCert) names(leaf *x509.Certificate) bool {
	return leaf.VerifyHostname(s.ip) == nil && leaf.VerifyHostname(s.node) == nil
}

// GetCertificate serves the current pair.
func (s *servingCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load(), nil
}

// run obtains a CA-signed pair once registered is closed (unless one was
// kept) and renews it until ctx ends. newClient authenticates as the node.
func (s *servingCert) run(ctx context.Context, registered <-chan struct{}, newClient func() (kubernetes.Interface, error)) {
	select {
	case <-registered:
	case <-ctx.Done():
		return
	}
	if !s.kept {
		// Without a pair on disk the first renewal is at once (a stale
		// one would time it by its own life).
		_ = os.Remove(s.certPath)
	}
	rotateCert(ctx, newClient, s.certPath, s.keyPath, "serving", s.renew, s.log)
}

// renew files a serving CSR for the node's name and address and serves
// the issued pair from the next handshake on.
func (s *servingCert) renew(ctx context.Context, client kubernetes.Interface) error {
	tmpl := &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "system:node:" + s.node, Organization: []string{"system:nodes"}},
		DNSNames: []string{s.node},
	}
	if ip := net.ParseIP(s.ip); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	if err := requestCert(ctx, client, tmpl, certificatesv1.KubeletServingSignerName, certificatesv1.UsageServerAuth, s.certPath, s.keyPath, s.log); err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(s.certPath, s.keyPath)
	if err != nil {
		return err
	}
	s.cur.Store(&pair)
	return nil
}
