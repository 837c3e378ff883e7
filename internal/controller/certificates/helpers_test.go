package certificates

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// t0 is the tests' now.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testCA is a CA for signing tests, of the given key type, valid from
// an hour before t0 for validity.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newTestCA(t *testing.T, rsaKey bool, validity time.Duration) testCA {
	t.Helper()
	var key crypto.Signer
	var err error
	if rsaKey {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test-ca"},
		NotBefore:             t0.Add(-time.Hour),
		NotAfter:              t0.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{cert: cert, key: key}
}

func (ca testCA) get() (*x509.Certificate, crypto.Signer, error) { return ca.cert, ca.key, nil }

// pool trusts the CA alone.
func (ca testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// request is a certificate request's subject and names.
type request struct {
	cn    string
	orgs  []string
	dns   []string
	ips   []string
	email []string
}

// pemRequest returns a PEM certificate request for r signed by a new
// ECDSA key.
func pemRequest(t *testing.T, r request) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: r.cn, Organization: r.orgs}, DNSNames: r.dns, EmailAddresses: r.email}
	for _, ip := range r.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func parsed(t *testing.T, data []byte) *x509.CertificateRequest {
	t.Helper()
	req, err := parseRequest(data)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// A node's client request, as a kubelet makes it.
func nodeClient(node string) request {
	return request{cn: "system:node:" + node, orgs: []string{"system:nodes"}}
}

var (
	clientUsages  = []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageClientAuth}
	servingUsages = []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageKeyEncipherment, certv1.UsageServerAuth}
)

// csrObject is a CSR named name for signer and usages, asked for by user.
func csrObject(t *testing.T, name, signer string, r request, usages []certv1.KeyUsage, user string, groups ...string) *certv1.CertificateSigningRequest {
	t.Helper()
	return &certv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1", CreationTimestamp: metav1.NewTime(t0.Add(-time.Minute))},
		Spec: certv1.CertificateSigningRequestSpec{
			Request: pemRequest(t, r), SignerName: signer, Usages: usages,
			Username: user, Groups: groups, UID: "user-uid",
		},
	}
}

// withConditions returns csr with conditions of the given types, set at
// at.
func withConditions(csr *certv1.CertificateSigningRequest, at time.Time, ts ...certv1.RequestConditionType) *certv1.CertificateSigningRequest {
	for _, ct := range ts {
		csr.Status.Conditions = append(csr.Status.Conditions, condition(ct, "Test", "", at))
	}
	return csr
}

// fakeCluster is a fake clientset holding objs and an informer factory
// over it; start starts the factory and waits for the CSR cache.
type fakeCluster struct {
	client  *fake.Clientset
	factory informers.SharedInformerFactory
}

func newFakeCluster(objs ...*certv1.CertificateSigningRequest) *fakeCluster {
	client := fake.NewClientset()
	for _, o := range objs {
		_ = client.Tracker().Add(o)
	}
	return &fakeCluster{client: client, factory: informers.NewSharedInformerFactory(client, 0)}
}

func (f *fakeCluster) start(t *testing.T) {
	t.Helper()
	f.factory.Certificates().V1().CertificateSigningRequests().Informer()
	f.factory.Start(t.Context().Done())
	t.Cleanup(f.factory.Shutdown)
	for typ, ok := range f.factory.WaitForCacheSync(t.Context().Done()) {
		if !ok {
			t.Fatalf("%v cache did not sync", typ)
		}
	}
}

// get reads a CSR back from the fake server.
func (f *fakeCluster) get(t *testing.T, name string) *certv1.CertificateSigningRequest {
	t.Helper()
	csr, err := f.client.CertificatesV1().CertificateSigningRequests().Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return csr
}
