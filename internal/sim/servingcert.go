package sim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// servingCert is the kubelet endpoint's certificate. The API server
// verifies kubelets against the cluster CA, so the simulator asks for one
// through a kubernetes.io/kubelet-serving CSR naming every simulated
// node's address, and approves it itself (its identity, usually the
// admin's, may; csrapproving approves only a node's request for its own
// names). Until it is issued, or when the simulator may not approve, it
// serves a self-signed certificate, which the API server refuses (logs,
// exec and metrics scrapes of simulated nodes then fail; the rest works).
type servingCert struct {
	cur atomic.Pointer[tls.Certificate]
}

func (c *servingCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// csrWait bounds the wait for the serving CSR to be signed.
const csrWait = time.Minute

// requestServingCert files, approves and waits for the serving CSR; on
// failure it logs why and keeps the self-signed certificate.
func (s *Sim) requestServingCert(ctx context.Context, c *servingCert) {
	cert, err := s.issueServingCert(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("no kubelet serving certificate from the cluster CA: the API server will refuse the simulated kubelets", "err", err)
		}
		return
	}
	c.cur.Store(cert)
	s.log.Info("kubelet serving certificate issued by the cluster CA", "addresses", len(s.byIndex))
}

func (s *Sim) issueServingCert(ctx context.Context) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "system:node:" + strings.TrimSuffix(s.cfg.NamePrefix, "-") + "-kubelets", Organization: []string{"system:nodes"}},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	for i := range s.byIndex {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(nodeIP(i)))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, err
	}
	csrs := s.client.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Create(ctx, &certv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "sim-kubelet-serving-"},
		Spec: certv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: certv1.KubeletServingSignerName,
			Usages:     []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageServerAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("filing the serving CSR: %w", err)
	}
	csr.Status.Conditions = append(csr.Status.Conditions, certv1.CertificateSigningRequestCondition{
		Type: certv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "SkiffSimulator",
		Message: "the simulator's own kubelet endpoint", LastUpdateTime: metav1.Now(),
	})
	if _, err := csrs.UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
		return nil, fmt.Errorf("approving the serving CSR %s: %w", csr.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, csrWait)
	defer cancel()
	for {
		got, err := csrs.Get(ctx, csr.Name, metav1.GetOptions{})
		if err == nil && len(got.Status.Certificate) > 0 {
			pair, err := tls.X509KeyPair(got.Status.Certificate, pemKey(key))
			if err != nil {
				return nil, fmt.Errorf("serving CSR %s: %w", csr.Name, err)
			}
			return &pair, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("serving CSR %s not signed within %v", csr.Name, csrWait)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func pemKey(key *ecdsa.PrivateKey) []byte {
	der, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}
