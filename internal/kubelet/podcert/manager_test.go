package podcert

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

const signer = "example.com/spiffe"

// harness is a Manager on a fake clientset that holds the node n1 and the
// service account team/runner, with a clock the test moves.
type harness struct {
	t      *testing.T
	m      *Manager
	client *fake.Clientset
	now    time.Time
	caKey  ed25519.PrivateKey
	ca     *x509.Certificate
	caPEM  string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	client := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "node-uid"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "runner", UID: "sa-uid"}},
	)
	// The fake tracker does not generate names.
	var mu sync.Mutex
	n := 0
	client.PrependReactor("create", "podcertificaterequests", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*certificatesv1.PodCertificateRequest)
		mu.Lock()
		n++
		r.Name = fmt.Sprintf("%s%d", r.GenerateName, n)
		mu.Unlock()
		return false, nil, nil
	})
	h := &harness{t: t, client: client, now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	h.m = New(client, "n1", slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.m.now = func() time.Time { return h.now }
	h.m.jitter = func() time.Duration { return 0 }
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), IsCA: true, BasicConstraintsValid: true,
		NotBefore: h.now.Add(-time.Hour), NotAfter: h.now.Add(365 * 24 * time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	h.caKey = priv
	h.ca, _ = x509.ParseCertificate(der)
	h.caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return h
}

func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "web", UID: "pod-uid"},
		Spec:       corev1.PodSpec{NodeName: "n1", ServiceAccountName: "runner"},
	}
}

func projection() *corev1.PodCertificateProjection {
	return &corev1.PodCertificateProjection{SignerName: signer, KeyType: "ECDSAP256", CredentialBundlePath: "creds.pem",
		UserAnnotations: map[string]string{"spiffe/path-overriding": "/custom"}}
}

func (h *harness) bundle(pod *corev1.Pod) ([]byte, []byte, error) {
	return h.m.CredentialBundle(context.Background(), pod, "tls", 0, projection())
}

// requests lists the requests the Manager created, oldest first.
func (h *harness) requests() []certificatesv1.PodCertificateRequest {
	h.t.Helper()
	l, err := h.client.CertificatesV1().PodCertificateRequests("team").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return l.Items
}

// observe puts r into the Manager's informer cache, as a watch event
// would.
func (h *harness) observe(r *certificatesv1.PodCertificateRequest) {
	h.t.Helper()
	if err := h.m.requests.GetStore().Add(r); err != nil {
		h.t.Fatal(err)
	}
}

// issue signs r's key for life, as a signer writes status.
func (h *harness) issue(r certificatesv1.PodCertificateRequest, life time.Duration) string {
	h.t.Helper()
	csr, err := x509.ParseCertificateRequest(r.Spec.StubPKCS10Request)
	if err != nil {
		h.t.Fatal(err)
	}
	notBefore := h.now.Add(-2 * time.Minute).Truncate(time.Second)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(h.now.UnixNano()), NotBefore: notBefore, NotAfter: notBefore.Add(life)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, h.ca, csr.PublicKey, h.caKey)
	if err != nil {
		h.t.Fatal(err)
	}
	leaf := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"X-Note": "dropped"}, Bytes: der}))
	r.Status = certificatesv1.PodCertificateRequestStatus{
		Conditions: []metav1.Condition{{Type: certificatesv1.PodCertificateRequestConditionTypeIssued, Status: metav1.ConditionTrue, Reason: "Issued"}},
		// Text between blocks and headers are dropped from the chain.
		CertificateChain: leaf + "some text\n" + h.caPEM,
		NotBefore:        ptr.To(metav1.NewTime(notBefore)),
		NotAfter:         ptr.To(metav1.NewTime(notBefore.Add(life))),
		BeginRefreshAt:   ptr.To(metav1.NewTime(notBefore.Add(life - 30*time.Minute))),
	}
	h.observe(&r)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) + h.caPEM
}

func (h *harness) deny(r certificatesv1.PodCertificateRequest, cond string) {
	r.Status.Conditions = []metav1.Condition{{Type: cond, Status: metav1.ConditionTrue, Reason: "NoWay", Message: "not for you"}}
	h.observe(&r)
}

// keyMatches checks that keyPEM is a PKCS#8 key whose public half is the
// leaf's of chain.
func keyMatches(t *testing.T, keyPEM, chain []byte) {
	t.Helper()
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		t.Fatalf("key is not a PEM PRIVATE KEY")
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := pem.Decode(chain)
	leaf, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		t.Error("the key is not the leaf certificate's")
	}
}

func TestIssuance(t *testing.T) {
	h := newHarness(t)
	pod := testPod()
	if _, _, err := h.bundle(pod); !errors.Is(err, ErrNotIssued) {
		t.Fatalf("first call: %v, want ErrNotIssued", err)
	}
	reqs := h.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	want := certificatesv1.PodCertificateRequestSpec{
		SignerName: signer, PodName: "web", PodUID: "pod-uid", ServiceAccountName: "runner", ServiceAccountUID: "sa-uid",
		NodeName: "n1", NodeUID: "node-uid", UnverifiedUserAnnotations: map[string]string{"spiffe/path-overriding": "/custom"},
		StubPKCS10Request: r.Spec.StubPKCS10Request,
	}
	if diff := cmp.Diff(want, r.Spec); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "web", UID: "pod-uid"}}, r.OwnerReferences); diff != "" {
		t.Errorf("owner (-want +got):\n%s", diff)
	}
	csr, err := x509.ParseCertificateRequest(r.Spec.StubPKCS10Request)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Errorf("stub request signature: %v", err)
	}
	if k, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", csr.PublicKey)
	}

	// Until the signer answers: no second request, however often asked.
	for range 3 {
		if _, _, err := h.bundle(pod); !errors.Is(err, ErrNotIssued) {
			t.Fatalf("pending: %v, want ErrNotIssued", err)
		}
	}
	h.observe(&r)
	if _, _, err := h.bundle(pod); !errors.Is(err, ErrNotIssued) {
		t.Fatalf("pending, observed: %v, want ErrNotIssued", err)
	}
	chain := h.issue(r, 24*time.Hour)
	key, got, err := h.bundle(pod)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(chain, string(got)); diff != "" {
		t.Errorf("chain (-want +got):\n%s", diff)
	}
	keyMatches(t, key, got)

	// A crash-looping pod syncs again and again: the same credentials.
	h.now = h.now.Add(20 * time.Hour)
	for range 3 {
		k2, c2, err := h.bundle(pod)
		if err != nil || string(k2) != string(key) || string(c2) != string(got) {
			t.Fatalf("later call changed the credentials (err %v)", err)
		}
	}
	if n := len(h.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}

	// Another source of the pod is one more request.
	if _, _, err := h.m.CredentialBundle(context.Background(), pod, "tls", 1, projection()); !errors.Is(err, ErrNotIssued) {
		t.Fatalf("second source: %v", err)
	}
	if n := len(h.requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestRefresh(t *testing.T) {
	h := newHarness(t)
	pod := testPod()
	_, _, _ = h.bundle(pod)
	first := h.issue(h.requests()[0], 2*time.Hour)
	key1, _, err := h.bundle(pod)
	if err != nil {
		t.Fatal(err)
	}

	// beginRefreshAt is 1h28m from now: nothing before it.
	h.now = h.now.Add(88*time.Minute - time.Second)
	if _, c, _ := h.bundle(pod); string(c) != first || len(h.requests()) != 1 {
		t.Fatalf("refreshed early: %d requests", len(h.requests()))
	}
	h.now = h.now.Add(time.Second)
	for range 3 {
		k, c, err := h.bundle(pod)
		if err != nil || string(c) != first || string(k) != string(key1) {
			t.Fatalf("during the refresh the current credentials are served (err %v)", err)
		}
	}
	reqs := h.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	second := h.issue(reqs[1], 2*time.Hour)
	key2, c2, err := h.bundle(pod)
	if err != nil || string(c2) != second {
		t.Fatalf("after the refresh: err %v, chain changed %v", err, string(c2) != first)
	}
	if string(key2) == string(key1) {
		t.Error("the refresh reused the key")
	}
	keyMatches(t, key2, c2)

	// A denied refresh keeps the current certificate and backs off.
	h.now = h.now.Add(90 * time.Minute)
	_, _, _ = h.bundle(pod)
	reqs = h.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	h.deny(reqs[2], certificatesv1.PodCertificateRequestConditionTypeDenied)
	if _, c, err := h.bundle(pod); err != nil || string(c) != second {
		t.Fatalf("after a denied refresh: err %v", err)
	}
	h.now = h.now.Add(retryInitial)
	_, _, _ = h.bundle(pod)
	if n := len(h.requests()); n != 4 {
		t.Errorf("%d requests after the back-off, want 4", n)
	}
}

func TestDeniedAndFailed(t *testing.T) {
	for _, cond := range []string{certificatesv1.PodCertificateRequestConditionTypeDenied, certificatesv1.PodCertificateRequestConditionTypeFailed} {
		t.Run(cond, func(t *testing.T) {
			h := newHarness(t)
			pod := testPod()
			_, _, _ = h.bundle(pod)
			h.deny(h.requests()[0], cond)
			_, _, err := h.bundle(pod)
			if err == nil || !strings.Contains(err.Error(), `reason="NoWay" message="not for you"`) {
				t.Fatalf("error %v, want the signer's reason and message", err)
			}
			// Backed off: the same error and no request for a minute,
			// then two minutes, and so on.
			for _, wait := range []time.Duration{retryInitial, 2 * retryInitial, 4 * retryInitial} {
				before := len(h.requests())
				h.now = h.now.Add(wait - time.Second)
				if _, _, err := h.bundle(pod); err == nil || len(h.requests()) != before {
					t.Fatalf("asked again before the back-off of %v ended", wait)
				}
				h.now = h.now.Add(time.Second)
				if _, _, err := h.bundle(pod); !errors.Is(err, ErrNotIssued) || len(h.requests()) != before+1 {
					t.Fatalf("after %v: err %v, %d requests", wait, err, len(h.requests()))
				}
				reqs := h.requests()
				h.deny(reqs[len(reqs)-1], cond)
				// The back-off counts from when the kubelet sees it.
				if _, _, err := h.bundle(pod); err == nil {
					t.Fatal("denied again: no error")
				}
			}
			// Issued at last: the back-off is forgotten.
			_, _, _ = h.bundle(pod)
			h.now = h.now.Add(8 * retryInitial)
			_, _, _ = h.bundle(pod)
			reqs := h.requests()
			h.issue(reqs[len(reqs)-1], 2*time.Hour)
			if _, _, err := h.bundle(pod); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDeletedRequestIsMadeAgain(t *testing.T) {
	h := newHarness(t)
	pod := testPod()
	_, _, _ = h.bundle(pod)
	// Never seen by the informer: taken for deleted after ten minutes.
	h.now = h.now.Add(assumeDeletedAfter)
	_, _, _ = h.bundle(pod)
	if n := len(h.requests()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	h.now = h.now.Add(time.Second)
	if _, _, err := h.bundle(pod); !errors.Is(err, ErrNotIssued) {
		t.Fatalf("err %v", err)
	}
	if n := len(h.requests()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func TestForgetPod(t *testing.T) {
	h := newHarness(t)
	pod := testPod()
	_, _, _ = h.bundle(pod)
	h.issue(h.requests()[0], 2*time.Hour)
	if _, _, err := h.bundle(pod); err != nil {
		t.Fatal(err)
	}
	h.m.ForgetPod(pod.UID)
	if _, _, err := h.bundle(pod); !errors.Is(err, ErrNotIssued) {
		t.Fatalf("after ForgetPod: %v, want ErrNotIssued", err)
	}
	if n := len(h.requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

// A refresh the API server refuses keeps the certificate and is tried
// again a minute later, not on every sync.
func TestRefusedRefresh(t *testing.T) {
	h := newHarness(t)
	pod := testPod()
	_, _, _ = h.bundle(pod)
	chain := h.issue(h.requests()[0], 2*time.Hour)
	refusals := 0
	h.client.PrependReactor("create", "podcertificaterequests", func(k8stesting.Action) (bool, runtime.Object, error) {
		refusals++
		return true, nil, errors.New("refused")
	})
	h.now = h.now.Add(2 * time.Hour)
	for range 3 {
		if _, c, err := h.bundle(pod); err != nil || string(c) != chain {
			t.Fatalf("err %v, or the certificate changed", err)
		}
	}
	if refusals != 1 {
		t.Errorf("%d creates, want 1 within the minute", refusals)
	}
	h.now = h.now.Add(retryInitial)
	_, _, _ = h.bundle(pod)
	if refusals != 2 {
		t.Errorf("%d creates, want 2 after a minute", refusals)
	}
}

func TestCreateErrorsAreNotRequests(t *testing.T) {
	h := newHarness(t)
	pod := testPod()
	pod.Spec.ServiceAccountName = "missing"
	if _, _, err := h.bundle(pod); err == nil || !strings.Contains(err.Error(), "while fetching service account") {
		t.Fatalf("err %v", err)
	}
	pod.Spec.ServiceAccountName = "runner"
	// No back-off: the pod worker paces the retries.
	if _, _, err := h.bundle(pod); !errors.Is(err, ErrNotIssued) {
		t.Fatalf("err %v", err)
	}
}

func TestNotify(t *testing.T) {
	h := newHarness(t)
	var woken []types.UID
	h.m.SetNotify(func(uid types.UID) { woken = append(woken, uid) })
	other := &certificatesv1.PodCertificateRequest{Spec: certificatesv1.PodCertificateRequestSpec{PodUID: "other"}}
	h.m.changed(other)
	_, _, _ = h.bundle(testPod())
	h.m.changed(&h.requests()[0])
	h.m.changed(other)
	if diff := cmp.Diff([]types.UID{"pod-uid"}, woken); diff != "" {
		t.Errorf("woken (-want +got):\n%s", diff)
	}
}

func TestKeyTypes(t *testing.T) {
	for _, tc := range []struct {
		keyType string
		check   func(crypto.PublicKey) bool
	}{
		{"ECDSAP256", func(k crypto.PublicKey) bool { e, ok := k.(*ecdsa.PublicKey); return ok && e.Curve == elliptic.P256() }},
		{"ECDSAP384", func(k crypto.PublicKey) bool { e, ok := k.(*ecdsa.PublicKey); return ok && e.Curve == elliptic.P384() }},
		{"ECDSAP521", func(k crypto.PublicKey) bool { e, ok := k.(*ecdsa.PublicKey); return ok && e.Curve == elliptic.P521() }},
		{"ED25519", func(k crypto.PublicKey) bool { _, ok := k.(ed25519.PublicKey); return ok }},
		{"RSA3072", func(k crypto.PublicKey) bool { r, ok := k.(*rsa.PublicKey); return ok && r.N.BitLen() == 3072 }},
		{"RSA4096", func(k crypto.PublicKey) bool { r, ok := k.(*rsa.PublicKey); return ok && r.N.BitLen() == 4096 }},
	} {
		t.Run(tc.keyType, func(t *testing.T) {
			keyPEM, der, err := newKeyAndRequest(tc.keyType)
			if err != nil {
				t.Fatal(err)
			}
			csr, err := x509.ParseCertificateRequest(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := csr.CheckSignature(); err != nil {
				t.Error(err)
			}
			if !tc.check(csr.PublicKey) {
				t.Errorf("public key %T is not a %s key", csr.PublicKey, tc.keyType)
			}
			b, _ := pem.Decode(keyPEM)
			key, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if !key.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
				t.Error("the request is not for the key")
			}
		})
	}
	if _, _, err := newKeyAndRequest("RSA2048"); err == nil {
		t.Error("RSA2048: no error")
	}
}
