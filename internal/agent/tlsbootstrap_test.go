package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// testSigner is a fake API server's csrsigning: every CSR created is
// issued at once, signed by its CA, valid for life.
type testSigner struct {
	t      *testing.T
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPEM  []byte
	life   time.Duration
	issued atomic.Int32
}

func newTestSigner(t *testing.T, life time.Duration) *testSigner {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return &testSigner{t: t, ca: ca, caKey: key, life: life,
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// client is a fake clientset whose CSRs are issued on creation.
func (s *testSigner) client() kubernetes.Interface {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "certificatesigningrequests", func(a k8stesting.Action) (bool, runtime.Object, error) {
		csr := a.(k8stesting.CreateAction).GetObject().(*certificatesv1.CertificateSigningRequest)
		if csr.Name == "" {
			csr.Name = csr.GenerateName + time.Now().Format("150405.000000000")
		}
		b, _ := pem.Decode(csr.Spec.Request)
		req, err := x509.ParseCertificateRequest(b.Bytes)
		if err != nil {
			s.t.Errorf("parse CSR: %v", err)
			return true, nil, err
		}
		n := s.issued.Add(1)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(n) + 1), Subject: req.Subject,
			NotBefore: time.Now(), NotAfter: time.Now().Add(s.life),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, s.ca, req.PublicKey, s.caKey)
		if err != nil {
			return true, nil, err
		}
		csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: "True"}}
		csr.Status.Certificate = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		return false, nil, nil // the tracker stores the issued object
	})
	return cs
}

// The agent renews its client certificate between 70 % and 90 % of its
// life, with the current one, and replaces the files in place.
func TestRotateClientCert(t *testing.T) {
	s := newTestSigner(t, 2*time.Second)
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, clientCertFile), filepath.Join(dir, clientKeyFile)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := requestClientCert(ctx, s.client(), "n1", certPath, keyPath, log); err != nil {
		t.Fatalf("first certificate: %v", err)
	}
	first, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if cn := first.Leaf.Subject.CommonName; cn != "system:node:n1" {
		t.Fatalf("CN %q, want system:node:n1", cn)
	}
	if !keptClientCert(certPath, keyPath, s.caPEM, "n1") {
		t.Fatalf("a fresh certificate is not kept")
	}
	if keptClientCert(certPath, keyPath, s.caPEM, "n2") {
		t.Fatalf("node n2 would keep n1's certificate")
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		rotateClientCert(ctx, func() (kubernetes.Interface, error) { return s.client(), nil }, "n1", certPath, keyPath, log)
	}()
	// Renewed between 1.4 s and 1.8 s after issue: wait for two renewals.
	deadline := time.Now().Add(10 * time.Second)
	for s.issued.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d certificates issued in 10 s, want 3 (two renewals of a 2 s certificate)", s.issued.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	last, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatalf("the files after renewals are not a matching pair: %v", err)
	}
	if last.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatalf("the certificate on disk was not replaced")
	}
	if last.Leaf.NotBefore.Before(first.Leaf.NotBefore.Add(time.Second)) {
		t.Errorf("renewed at %v, issued at %v: want after 70 %% of a 2 s life", last.Leaf.NotBefore, first.Leaf.NotBefore)
	}
}
