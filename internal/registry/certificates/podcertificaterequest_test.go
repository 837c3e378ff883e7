package certificates

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func pcrErrFields(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, string(e.Type)+" "+e.Field)
	}
	return out
}

func pcrFields(t *testing.T) (csr []byte, chainFor func(notBefore time.Time, life time.Duration) string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return csr, func(nb time.Time, life time.Duration) string {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "p"}, NotBefore: nb, NotAfter: nb.Add(life)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
}

func newPCR(csr []byte) *certificatesv1.PodCertificateRequest {
	return &certificatesv1.PodCertificateRequest{Spec: certificatesv1.PodCertificateRequestSpec{
		SignerName: "example.com/signer", PodName: "pod", PodUID: "pod-uid", ServiceAccountName: "default",
		ServiceAccountUID: "sa-uid", NodeName: "node", NodeUID: "node-uid",
		MaxExpirationSeconds: ptr(int32(86400)), StubPKCS10Request: csr,
	}}
}

func TestValidatePCRCreate(t *testing.T) {
	csr, _ := pcrFields(t)
	mut := func(f func(*certificatesv1.PodCertificateRequestSpec)) *certificatesv1.PodCertificateRequest {
		r := newPCR(csr)
		f(&r.Spec)
		return r
	}
	tests := []struct {
		name string
		obj  *certificatesv1.PodCertificateRequest
		want []string
	}{
		{"valid", newPCR(csr), nil},
		{"no signer", mut(func(s *certificatesv1.PodCertificateRequestSpec) { s.SignerName = "" }), []string{"FieldValueRequired spec.signerName"}},
		{"bad pod name", mut(func(s *certificatesv1.PodCertificateRequestSpec) { s.PodName = "Pod_1" }), []string{"FieldValueInvalid spec.podName"}},
		{"no node uid", mut(func(s *certificatesv1.PodCertificateRequestSpec) { s.NodeUID = "" }), []string{"FieldValueInvalid spec.nodeUID"}},
		{"no max expiration", mut(func(s *certificatesv1.PodCertificateRequestSpec) { s.MaxExpirationSeconds = nil }),
			[]string{"FieldValueRequired spec.maxExpirationSeconds"}},
		{"kubernetes signer over a day", mut(func(s *certificatesv1.PodCertificateRequestSpec) {
			s.SignerName = "kubernetes.io/kube-apiserver-client-pod"
			s.MaxExpirationSeconds = ptr(int32(86401))
		}), []string{"FieldValueInvalid spec.maxExpirationSeconds"}},
		{"other signer 91 days", mut(func(s *certificatesv1.PodCertificateRequestSpec) { s.MaxExpirationSeconds = ptr(int32(91 * 86400)) }), nil},
		{"under an hour", mut(func(s *certificatesv1.PodCertificateRequestSpec) { s.MaxExpirationSeconds = ptr(int32(3599)) }),
			[]string{"FieldValueInvalid spec.maxExpirationSeconds"}},
		{"no stub request", mut(func(s *certificatesv1.PodCertificateRequestSpec) { s.StubPKCS10Request = nil }), []string{"FieldValueInvalid spec"}},
		{"garbage stub request", mut(func(s *certificatesv1.PodCertificateRequestSpec) { s.StubPKCS10Request = []byte{1, 2, 3} }),
			[]string{"FieldValueInvalid spec.stubPKCS10Request"}},
		{"bad user annotation", mut(func(s *certificatesv1.PodCertificateRequestSpec) {
			s.UnverifiedUserAnnotations = map[string]string{"nodomain": "x"}
		}),
			[]string{"FieldValueInvalid spec.unverifiedUserAnnotations"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, pcrErrFields(validatePCRCreate(tt.obj))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidatePCRStatus(t *testing.T) {
	csr, chainFor := pcrFields(t)
	now := time.Now().Truncate(time.Second)
	nb := now.Add(-time.Minute)
	issued := func(chain string, nb time.Time, life, refresh time.Duration) *certificatesv1.PodCertificateRequest {
		r := newPCR(csr)
		r.Status = certificatesv1.PodCertificateRequestStatus{
			CertificateChain: chain,
			NotBefore:        &metav1.Time{Time: nb}, NotAfter: &metav1.Time{Time: nb.Add(life)}, BeginRefreshAt: &metav1.Time{Time: nb.Add(refresh)},
			Conditions: []metav1.Condition{{Type: "Issued", Status: metav1.ConditionTrue, Reason: "R", LastTransitionTime: metav1.Now()}},
		}
		return r
	}
	denied := newPCR(csr)
	denied.Status.Conditions = []metav1.Condition{{Type: "Denied", Status: metav1.ConditionTrue, Reason: "R", LastTransitionTime: metav1.Now()}}
	deniedWithChain := denied.DeepCopy()
	deniedWithChain.Status.CertificateChain = "x"
	_, otherChain := pcrFields(t)
	pending := newPCR(csr)
	changed := issued(chainFor(nb, time.Hour), nb, time.Hour, 15*time.Minute)
	changed.Status.Conditions[0].Message = "changed"
	tests := []struct {
		name     string
		obj, old *certificatesv1.PodCertificateRequest
		want     []string
	}{
		{"issue", issued(chainFor(nb, time.Hour), nb, time.Hour, 15*time.Minute), pending, nil},
		{"deny", denied, pending, nil},
		{"deny with a chain", deniedWithChain, pending, []string{"FieldValueInvalid status"}},
		{"unknown condition", func() *certificatesv1.PodCertificateRequest {
			r := denied.DeepCopy()
			r.Status.Conditions[0].Type = "Approved"
			return r
		}(), pending, []string{"FieldValueNotSupported status.conditions[0].type"}},
		{"other key", issued(otherChain(nb, time.Hour), nb, time.Hour, 15*time.Minute), pending, []string{"FieldValueInvalid status.certificateChain"}},
		{"short-lived", issued(chainFor(nb, 30*time.Minute), nb, 30*time.Minute, 15*time.Minute), pending, []string{"FieldValueInvalid status.certificateChain"}},
		{"old notBefore", issued(chainFor(nb.Add(-time.Hour), 2*time.Hour), nb.Add(-time.Hour), 2*time.Hour, 15*time.Minute), pending,
			[]string{"FieldValueInvalid status.notBefore"}},
		{"refresh too early", issued(chainFor(nb, time.Hour), nb, time.Hour, 5*time.Minute), pending, []string{"FieldValueInvalid status.beginRefreshAt"}},
		{"refresh too late", issued(chainFor(nb, time.Hour), nb, time.Hour, 55*time.Minute), pending, []string{"FieldValueInvalid status.beginRefreshAt"}},
		{"not a certificate", issued("junk", nb, time.Hour, 15*time.Minute), pending, []string{"FieldValueInvalid status.certificateChain"}},
		{"change after issue", changed, issued(chainFor(nb, time.Hour), nb, time.Hour, 15*time.Minute), []string{"FieldValueInvalid status"}},
		{"pending stays pending", pending, pending, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, pcrErrFields(validatePCRStatus(tt.obj, tt.old, now))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// The strategy takes zero values and nil pointers without panicking.
func TestPCRStrategyDoesNotPanic(t *testing.T) {
	r := podCertificateRequests()
	s := r.Strategy
	obj, old := r.New(), r.New()
	s.PrepareForCreate(context.Background(), obj)
	s.PrepareForUpdate(context.Background(), obj, old)
	s.Validate(obj)
	s.ValidateUpdate(obj, old)
	s.ValidateStatusUpdate(obj, old)
	r.Table.Row(obj)
	r.Fields(obj)
	r.Fields(nil)
	issued := &certificatesv1.PodCertificateRequest{Status: certificatesv1.PodCertificateRequestStatus{
		Conditions: []metav1.Condition{{Type: "Issued", Status: metav1.ConditionTrue, Reason: "R", LastTransitionTime: metav1.Now()}}}}
	if errs := s.ValidateStatusUpdate(issued, old); len(errs) == 0 {
		t.Error("an issued request without a chain passed")
	}
}

// maxExpirationSeconds defaults to a day, as upstream's +default; a value
// given is kept.
func TestPodCertificateRequestDefaults(t *testing.T) {
	def := podCertificateRequests().Strategy.Default
	r := &certificatesv1.PodCertificateRequest{}
	def(r)
	if r.Spec.MaxExpirationSeconds == nil || *r.Spec.MaxExpirationSeconds != 86400 {
		t.Errorf("maxExpirationSeconds %v, want 86400", r.Spec.MaxExpirationSeconds)
	}
	r.Spec.MaxExpirationSeconds = ptr(int32(3600))
	def(r)
	if *r.Spec.MaxExpirationSeconds != 3600 {
		t.Errorf("maxExpirationSeconds %v, want 3600 kept", *r.Spec.MaxExpirationSeconds)
	}
}
