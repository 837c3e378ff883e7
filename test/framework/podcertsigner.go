package framework

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// PodCertificatePathAnnotation is the user annotation whose value
// StartPodCertificateSigner puts as the path of the spiffe URI it issues.
const PodCertificatePathAnnotation = "example.com/path"

// StartPodCertificateSigner runs a small signer of PodCertificateRequests
// until the test ends, as upstream's conformance tests run theirs: it
// publishes a fresh CA as the ClusterTrustBundle
// "<signer with ':' for '/'>:primary" and issues each new request of
// signer through client (which must be allowed to "sign" for it) for
// min(24h, maxExpirationSeconds), beginning refresh 30 minutes before the
// end, for client and server use, with the URI spiffe://cluster.local<path>
// (path from PodCertificatePathAnnotation, or /ns/<ns>/sa/<account>) and,
// as upstream's test signer, the DNS names server.<ns>.svc and
// server.<ns>.svc.cluster.local. It returns the CA's PEM.
func StartPodCertificateSigner(t testing.TB, client kubernetes.Interface, signer string) string {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	ctx, cancel := context.WithCancel(context.Background())
	ctb := &certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: strings.Replace(signer, "/", ":", 1) + ":primary"},
		Spec: certificatesv1.ClusterTrustBundleSpec{SignerName: signer, TrustBundle: caPEM}}
	if _, err := client.CertificatesV1().ClusterTrustBundles().Create(ctx, ctb, metav1.CreateOptions{}); err != nil {
		cancel()
		t.Fatal(err)
	}
	w, err := client.CertificatesV1().PodCertificateRequests("").Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.signerName", signer).String()})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var done sync.WaitGroup
	done.Add(1)
	t.Cleanup(func() { cancel(); w.Stop(); done.Wait() })
	go func() {
		defer done.Done()
		for ev := range w.ResultChan() {
			r, ok := ev.Object.(*certificatesv1.PodCertificateRequest)
			if !ok || ev.Type != watch.Added || r.Status.CertificateChain != "" {
				continue
			}
			if err := issuePodCertificate(ctx, client, r, ca, priv); err != nil && ctx.Err() == nil {
				t.Errorf("issue %s/%s: %v", r.Namespace, r.Name, err)
			}
		}
	}()
	return caPEM
}

func issuePodCertificate(ctx context.Context, client kubernetes.Interface, r *certificatesv1.PodCertificateRequest, ca *x509.Certificate, caKey ed25519.PrivateKey) error {
	csr, err := x509.ParseCertificateRequest(r.Spec.StubPKCS10Request)
	if err != nil {
		return err
	}
	path := "/ns/" + r.Namespace + "/sa/" + r.Spec.ServiceAccountName
	if p, ok := r.Spec.UnverifiedUserAnnotations[PodCertificatePathAnnotation]; ok {
		path = p
	}
	life := min(24*time.Hour, time.Duration(ptr.Deref(r.Spec.MaxExpirationSeconds, 86400))*time.Second)
	notBefore := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), NotBefore: notBefore, NotAfter: notBefore.Add(life),
		URIs:     []*url.URL{{Scheme: "spiffe", Host: "cluster.local", Path: path}},
		DNSNames: []string{"server." + r.Namespace + ".svc", "server." + r.Namespace + ".svc.cluster.local"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, csr.PublicKey, caKey)
	if err != nil {
		return err
	}
	r.Status = certificatesv1.PodCertificateRequestStatus{
		Conditions: []metav1.Condition{{Type: certificatesv1.PodCertificateRequestConditionTypeIssued, Status: metav1.ConditionTrue,
			Reason: "Issued", Message: "issued", LastTransitionTime: metav1.Now()}},
		CertificateChain: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		NotBefore:        ptr.To(metav1.NewTime(notBefore)),
		NotAfter:         ptr.To(metav1.NewTime(notBefore.Add(life))),
		BeginRefreshAt:   ptr.To(metav1.NewTime(notBefore.Add(life - 30*time.Minute))),
	}
	_, err = client.CertificatesV1().PodCertificateRequests(r.Namespace).UpdateStatus(ctx, r, metav1.UpdateOptions{})
	return err
}
