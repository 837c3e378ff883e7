package certificates_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/controller/certificates"
	"github.com/skiff-io/skiff/test/framework"
)

// Against the real server, its bootstrap policy and the controllers'
// service accounts: a joining node's client CSR (a member of
// system:bootstrappers) and a node's renewal are approved and signed by
// the cluster CA; a node's serving CSR waits for an administrator, and is
// signed once approved.
func TestServerApprovesAndSigns(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(tokens, []byte("join-token,system:bootstrap:abcdef,u-join,\"system:bootstrappers\"\n"+
		"node-token,system:node:n1,u-n1,\"system:nodes\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := framework.StartInProcess(t, framework.WithTokenFile(tokens),
		framework.WithControllers(certificates.ApproverName, certificates.SignerName, certificates.CleanerName))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	as := func(token string) kubernetes.Interface {
		cfg := rest.AnonymousClientConfig(c.Config)
		cfg.BearerToken = token
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	joiner, node := as("join-token"), as("node-token")
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(c.Config.CAData) {
		if data, err := os.ReadFile(c.Config.CAFile); err != nil || !roots.AppendCertsFromPEM(data) {
			t.Fatalf("no cluster CA in the admin configuration (%v)", err)
		}
	}

	create := func(cs kubernetes.Interface, name, signer string, tmpl x509.CertificateRequest, usages ...certv1.KeyUsage) {
		t.Helper()
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &tmpl, key)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cs.CertificatesV1().CertificateSigningRequests().Create(ctx, &certv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: certv1.CertificateSigningRequestSpec{SignerName: signer, Usages: usages,
				Request: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create csr %s: %v", name, err)
		}
	}
	// issued waits for the CSR's certificate and checks it chains to the
	// cluster CA for usage.
	issued := func(name string, usage x509.ExtKeyUsage) *certv1.CertificateSigningRequest {
		t.Helper()
		var csr *certv1.CertificateSigningRequest
		if err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			var err error
			csr, err = c.Client.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
			return err == nil && len(csr.Status.Certificate) > 0, nil
		}); err != nil {
			t.Fatalf("csr %s: no certificate: %+v", name, csr.Status)
		}
		b, _ := pem.Decode(csr.Status.Certificate)
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("csr %s: certificate does not verify against the cluster CA: %v", name, err)
		}
		return csr
	}
	approvedWith := func(csr *certv1.CertificateSigningRequest, reason string) {
		t.Helper()
		for _, cond := range csr.Status.Conditions {
			if cond.Type == certv1.CertificateApproved && cond.Status == corev1.ConditionTrue && cond.Reason == reason {
				return
			}
		}
		t.Errorf("csr %s: no Approved condition with reason %s: %+v", csr.Name, reason, csr.Status.Conditions)
	}

	nodeSubject := pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes"}}
	clientUsages := []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageClientAuth}
	create(joiner, "join", certv1.KubeAPIServerClientKubeletSignerName, x509.CertificateRequest{Subject: nodeSubject}, clientUsages...)
	create(node, "renew", certv1.KubeAPIServerClientKubeletSignerName, x509.CertificateRequest{Subject: nodeSubject}, clientUsages...)
	create(node, "serving", certv1.KubeletServingSignerName, x509.CertificateRequest{Subject: nodeSubject, DNSNames: []string{"n1"}},
		certv1.UsageDigitalSignature, certv1.UsageServerAuth)
	approvedWith(issued("join", x509.ExtKeyUsageClientAuth), certificates.ReasonAutoApproved)
	approvedWith(issued("renew", x509.ExtKeyUsageClientAuth), certificates.ReasonAutoApproved)

	csrs := c.Client.CertificatesV1().CertificateSigningRequests()
	serving, err := csrs.Get(ctx, "serving", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(serving.Status.Conditions) != 0 {
		t.Fatalf("serving csr was decided: %+v", serving.Status.Conditions)
	}
	serving.Status.Conditions = append(serving.Status.Conditions, certv1.CertificateSigningRequestCondition{
		Type: certv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "AdminApproved", LastUpdateTime: metav1.Now()})
	if _, err := csrs.UpdateApproval(ctx, serving.Name, serving, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	issued("serving", x509.ExtKeyUsageServerAuth)
}
