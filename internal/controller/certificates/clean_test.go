package certificates

import (
	"testing"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestCleanAt(t *testing.T) {
	year := 365 * 24 * time.Hour
	ca := newTestCA(t, false, 10*year)
	// certFor issues a client certificate living d from t0.
	certFor := func(d time.Duration) []byte {
		out, err := issue(parsed(t, pemRequest(t, nodeClient("n1"))), clientUsages, d, ca.cert, ca.key, t0)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	created := t0.Add(-time.Minute)
	mk := func(cert []byte, at time.Time, conds ...certv1.RequestConditionType) *certv1.CertificateSigningRequest {
		csr := withConditions(csrObject(t, "c", certv1.KubeAPIServerClientKubeletSignerName, nodeClient("n1"), clientUsages, "u"), at, conds...)
		csr.Status.Certificate = cert
		return csr
	}
	noUpdateTime := mk(nil, t0, certv1.CertificateDenied)
	noUpdateTime.Status.Conditions[0].LastUpdateTime = metav1.Time{}
	tests := []struct {
		name   string
		csr    *certv1.CertificateSigningRequest
		want   time.Time
		wantOK bool
	}{
		{name: "pending", csr: mk(nil, t0), want: created.Add(24 * time.Hour), wantOK: true},
		{name: "issued", csr: mk(certFor(year), t0, certv1.CertificateApproved), want: t0.Add(time.Hour), wantOK: true},
		{name: "issued, expires first", csr: mk(certFor(20*time.Minute), t0, certv1.CertificateApproved), want: t0.Add(20 * time.Minute), wantOK: true},
		{name: "denied", csr: mk(nil, t0, certv1.CertificateDenied), want: t0.Add(time.Hour), wantOK: true},
		{name: "failed", csr: mk(nil, t0, certv1.CertificateApproved, certv1.CertificateFailed), want: t0.Add(time.Hour), wantOK: true},
		{name: "approved, not issued", csr: mk(nil, t0, certv1.CertificateApproved)},
		{name: "condition without update time", csr: noUpdateTime},
		// No condition: pending, whatever the certificate says.
		{name: "certificate without approval", csr: mk(certFor(time.Hour), t0), want: created.Add(24 * time.Hour), wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := cleanAt(tt.csr)
			if ok != tt.wantOK || !got.Equal(tt.want) {
				t.Errorf("cleanAt = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// The cleaner deletes what is due and leaves the rest.
func TestCleanerSync(t *testing.T) {
	mk := func(name string, created, at time.Time, conds ...certv1.RequestConditionType) *certv1.CertificateSigningRequest {
		csr := withConditions(csrObject(t, name, certv1.KubeAPIServerClientKubeletSignerName, nodeClient("n1"), clientUsages, "u"), at, conds...)
		csr.CreationTimestamp = metav1.NewTime(created)
		return csr
	}
	ago := func(d time.Duration) time.Time { return t0.Add(-d) }
	tests := []struct {
		name    string
		csr     *certv1.CertificateSigningRequest
		deleted bool
	}{
		{"pending a day", mk("old-pending", ago(25*time.Hour), ago(25*time.Hour)), true},
		{"pending an hour", mk("new-pending", ago(time.Hour), ago(time.Hour)), false},
		{"denied two hours ago", mk("old-denied", ago(3*time.Hour), ago(2*time.Hour), certv1.CertificateDenied), true},
		{"denied a minute ago", mk("new-denied", ago(3*time.Hour), ago(time.Minute), certv1.CertificateDenied), false},
		{"failed two hours ago", mk("old-failed", ago(3*time.Hour), ago(2*time.Hour), certv1.CertificateApproved, certv1.CertificateFailed), true},
		{"approved, unissued, a week", mk("unissued", ago(7*24*time.Hour), ago(7*24*time.Hour), certv1.CertificateApproved), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCluster(tt.csr)
			c, err := NewCleaner(f.client, f.factory, CleanerOptions{Clock: clocktesting.NewFakePassiveClock(t0)})
			if err != nil {
				t.Fatal(err)
			}
			f.start(t)
			if err := c.expiry.Sync(t.Context(), tt.csr.Name); err != nil {
				t.Fatal(err)
			}
			_, err = f.client.CertificatesV1().CertificateSigningRequests().Get(t.Context(), tt.csr.Name, metav1.GetOptions{})
			if deleted := apierrors.IsNotFound(err); deleted != tt.deleted {
				t.Errorf("deleted = %v (%v), want %v", deleted, err, tt.deleted)
			}
		})
	}
}
