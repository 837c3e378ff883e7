package certificates

import (
	"crypto"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func TestSignerSync(t *testing.T) {
	year := 365 * 24 * time.Hour
	ca := newTestCA(t, false, 10*year)
	serving := request{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"n1"}, ips: []string{"10.0.0.1"}}
	approvedCSR := func(name, signer string, r request, usages []certv1.KeyUsage) *certv1.CertificateSigningRequest {
		return withConditions(csrObject(t, name, signer, r, usages, "system:node:n1"), t0, certv1.CertificateApproved)
	}
	issued := approvedCSR("issued", certv1.KubeAPIServerClientKubeletSignerName, nodeClient("n1"), clientUsages)
	issued.Status.Certificate = []byte("already")
	shortLived := approvedCSR("short", certv1.KubeAPIServerClientKubeletSignerName, nodeClient("n1"), clientUsages)
	shortLived.Spec.ExpirationSeconds = ptr.To[int32](3600)

	tests := []struct {
		name string
		csr  *certv1.CertificateSigningRequest
		// wantUsage is the extended usage of the certificate issued;
		// zero when none is to be issued.
		wantUsage    x509.ExtKeyUsage
		wantNotAfter time.Time
		// wantFailed is the Failed condition's message, "" for none.
		wantFailed string
	}{
		{name: "kubelet client", csr: approvedCSR("client", certv1.KubeAPIServerClientKubeletSignerName, nodeClient("n1"), clientUsages),
			wantUsage: x509.ExtKeyUsageClientAuth, wantNotAfter: t0.Add(year - 5*time.Minute)},
		{name: "kubelet serving", csr: approvedCSR("serving", certv1.KubeletServingSignerName, serving, servingUsages),
			wantUsage: x509.ExtKeyUsageServerAuth, wantNotAfter: t0.Add(year - 5*time.Minute)},
		{name: "apiserver client", csr: approvedCSR("jane", certv1.KubeAPIServerClientSignerName, request{cn: "jane", orgs: []string{"devs"}}, clientUsages),
			wantUsage: x509.ExtKeyUsageClientAuth, wantNotAfter: t0.Add(year - 5*time.Minute)},
		{name: "expirationSeconds", csr: shortLived, wantUsage: x509.ExtKeyUsageClientAuth, wantNotAfter: t0.Add(time.Hour)},
		{name: "pending", csr: csrObject(t, "pending", certv1.KubeAPIServerClientKubeletSignerName, nodeClient("n1"), clientUsages, "u")},
		{name: "denied", csr: withConditions(csrObject(t, "denied", certv1.KubeAPIServerClientKubeletSignerName, nodeClient("n1"), clientUsages, "u"), t0, certv1.CertificateDenied)},
		{name: "approved then denied", csr: withConditions(csrObject(t, "both", certv1.KubeAPIServerClientKubeletSignerName, nodeClient("n1"), clientUsages, "u"), t0, certv1.CertificateApproved, certv1.CertificateDenied)},
		{name: "failed", csr: withConditions(csrObject(t, "failed", certv1.KubeAPIServerClientKubeletSignerName, nodeClient("n1"), clientUsages, "u"), t0, certv1.CertificateApproved, certv1.CertificateFailed)},
		{name: "issued", csr: issued},
		{name: "other signer", csr: approvedCSR("other", "example.com/signer", request{cn: "x"}, clientUsages)},
		{name: "client with a DNS name", csr: approvedCSR("dns", certv1.KubeAPIServerClientKubeletSignerName, request{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"evil"}}, clientUsages),
			wantFailed: "DNS subjectAltNames are not allowed"},
		{name: "serving for client auth", csr: approvedCSR("serving-client", certv1.KubeletServingSignerName, serving, clientUsages),
			wantFailed: "usages did not match [digital signature key encipherment server auth]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.csr.DeepCopy()
			f := newFakeCluster(tt.csr)
			s, err := NewSigner(f.client, f.factory, SignerOptions{CA: ca.get, Clock: clocktesting.NewFakePassiveClock(t0)})
			if err != nil {
				t.Fatal(err)
			}
			f.start(t)
			if err := s.sync(t.Context(), tt.csr.Name); err != nil {
				t.Fatal(err)
			}
			got := f.get(t, tt.csr.Name)
			switch {
			case tt.wantFailed != "":
				if len(got.Status.Certificate) != 0 {
					t.Error("a refused request got a certificate")
				}
				last := got.Status.Conditions[len(got.Status.Conditions)-1]
				if last.Type != certv1.CertificateFailed || last.Status != corev1.ConditionTrue ||
					last.Reason != ReasonSignerValidationFailure || last.Message != tt.wantFailed || !last.LastUpdateTime.Time.Equal(t0) {
					t.Errorf("last condition %+v, want Failed/%s %q at %v", last, ReasonSignerValidationFailure, tt.wantFailed, t0)
				}
			case tt.wantUsage != 0:
				c := parseCert(t, got.Status.Certificate)
				if _, err := c.Verify(x509.VerifyOptions{Roots: ca.pool(), CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{tt.wantUsage}}); err != nil {
					t.Errorf("certificate does not chain to the CA for %v: %v", tt.wantUsage, err)
				}
				req := parsed(t, got.Spec.Request)
				if c.Subject.String() != req.Subject.String() {
					t.Errorf("subject %s, want %s", c.Subject, req.Subject)
				}
				if !c.NotAfter.Equal(tt.wantNotAfter) {
					t.Errorf("NotAfter %v, want %v", c.NotAfter, tt.wantNotAfter)
				}
				if len(got.Status.Conditions) != len(before.Status.Conditions) {
					t.Errorf("conditions changed: %+v", got.Status.Conditions)
				}
			default:
				if string(got.Status.Certificate) != string(before.Status.Certificate) || len(got.Status.Conditions) != len(before.Status.Conditions) {
					t.Errorf("CSR changed: certificate %q, conditions %+v", got.Status.Certificate, got.Status.Conditions)
				}
				for _, a := range f.client.Actions() {
					if a.GetVerb() == "update" {
						t.Errorf("unexpected %s %s/%s", a.GetVerb(), a.GetResource().Resource, a.GetSubresource())
					}
				}
			}
		})
	}
}

// The CA is asked for at every signing: after a rotation the next
// certificate comes from the new CA, and an unavailable CA is retried.
func TestSignerAsksForTheCAEachTime(t *testing.T) {
	year := 365 * 24 * time.Hour
	oldCA, newCA := newTestCA(t, false, 10*year), newTestCA(t, true, 10*year)
	current := oldCA
	var caErr error
	get := func() (*x509.Certificate, crypto.Signer, error) {
		if caErr != nil {
			return nil, nil, caErr
		}
		return current.get()
	}
	mk := func(name string) *certv1.CertificateSigningRequest {
		return withConditions(csrObject(t, name, certv1.KubeAPIServerClientKubeletSignerName, nodeClient("n1"), clientUsages, "u"), t0, certv1.CertificateApproved)
	}
	f := newFakeCluster(mk("a"), mk("b"), mk("c"))
	s, err := NewSigner(f.client, f.factory, SignerOptions{CA: get, Clock: clocktesting.NewFakePassiveClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	f.start(t)
	if err := s.sync(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	current = newCA
	if err := s.sync(t.Context(), "b"); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]testCA{"a": oldCA, "b": newCA} {
		if err := parseCert(t, f.get(t, name).Status.Certificate).CheckSignatureFrom(want.cert); err != nil {
			t.Errorf("csr %s: not signed by the CA in force then: %v", name, err)
		}
	}
	caErr = errTestCA
	if err := s.sync(t.Context(), "c"); err == nil {
		t.Error("sync without a CA succeeded; want an error, to retry")
	}
	if len(f.get(t, "c").Status.Certificate) != 0 {
		t.Error("certificate issued without a CA")
	}
}

var errTestCA = errors.New("CA unavailable")
