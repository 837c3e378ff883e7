package certificates

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPrepareForCreate(t *testing.T) {
	csr := validCSR(t)
	csr.Spec.UID, csr.Spec.Groups = "u-1", []string{"system:masters"}
	csr.Spec.Extra = map[string]certificatesv1.ExtraValue{"k": {"v"}}
	csr.Status = certificatesv1.CertificateSigningRequestStatus{
		Conditions:  []certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateApproved, corev1.ConditionTrue)},
		Certificate: newCertificate(t),
	}
	prepareForCreate(context.Background(), csr)
	if csr.Spec.Username != "" || csr.Spec.UID != "" || csr.Spec.Groups != nil || csr.Spec.Extra != nil {
		t.Errorf("requester kept from the client: %+v", csr.Spec)
	}
	if len(csr.Status.Conditions) != 0 || len(csr.Status.Certificate) != 0 {
		t.Errorf("status kept from the client: %+v", csr.Status)
	}
	if csr.Spec.SignerName == "" || len(csr.Spec.Request) == 0 {
		t.Errorf("the request itself was cleared: %+v", csr.Spec)
	}
}

func TestPrepareForUpdate(t *testing.T) {
	old := validCSR(t)
	old.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateApproved, corev1.ConditionTrue)}
	csr := old.DeepCopy()
	csr.Labels = map[string]string{"a": "b"}
	csr.Spec.SignerName = "example.com/other"
	csr.Spec.Username = "mallory"
	csr.Status.Conditions = nil
	csr.Status.Certificate = newCertificate(t)
	prepareForUpdate(context.Background(), csr, old)
	if diff := cmp.Diff(old.Spec, csr.Spec); diff != "" {
		t.Errorf("spec changed through the main resource (-old +new):\n%s", diff)
	}
	if diff := cmp.Diff(old.Status, csr.Status); diff != "" {
		t.Errorf("status changed through the main resource (-old +new):\n%s", diff)
	}
	if csr.Labels["a"] != "b" {
		t.Error("metadata not taken from the write")
	}
}

func TestPrepareForStatusUpdate(t *testing.T) {
	earlier := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	old := validCSR(t)
	approvedCond := cond(certificatesv1.CertificateApproved, corev1.ConditionTrue)
	approvedCond.LastUpdateTime, approvedCond.LastTransitionTime = earlier, earlier
	progress := cond("Progressing", corev1.ConditionTrue)
	progress.LastUpdateTime, progress.LastTransitionTime = earlier, earlier
	old.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approvedCond, progress}
	old.Finalizers = []string{"example.com/keep"}

	csr := old.DeepCopy()
	csr.Spec.SignerName = "example.com/other"
	csr.Finalizers = nil
	// The signer rewrites Approved (ignored: it keeps its number) and
	// sends Progressing again without times (lastTransitionTime kept).
	csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{
		cond(certificatesv1.CertificateApproved, corev1.ConditionTrue),
		cond("Progressing", corev1.ConditionTrue),
		cond(certificatesv1.CertificateFailed, corev1.ConditionTrue),
	}
	csr.Status.Conditions[0].Message = "rewritten"
	cert := newCertificate(t)
	csr.Status.Certificate = cert
	prepareForStatusUpdate(context.Background(), csr, old)

	if csr.Spec.SignerName != old.Spec.SignerName || len(csr.Finalizers) != 1 {
		t.Errorf("spec or finalizers changed through /status: %q %v", csr.Spec.SignerName, csr.Finalizers)
	}
	if diff := cmp.Diff(approvedCond, csr.Status.Conditions[0]); diff != "" {
		t.Errorf("Approved not kept (-old +new):\n%s", diff)
	}
	if got := csr.Status.Conditions[1]; !got.LastTransitionTime.Equal(&earlier) || got.LastUpdateTime.Equal(&earlier) || got.LastUpdateTime.IsZero() {
		t.Errorf("Progressing times = %v/%v, want the old transition and a new update", got.LastTransitionTime, got.LastUpdateTime)
	}
	if got := csr.Status.Conditions[2]; got.LastTransitionTime.IsZero() || got.LastUpdateTime.IsZero() {
		t.Errorf("Failed not stamped: %+v", got)
	}
	if string(csr.Status.Certificate) != string(cert) {
		t.Error("certificate not taken from the write")
	}
	if errs := validateStatusUpdate(csr, old); len(errs) != 0 {
		t.Errorf("the prepared write does not validate: %v", errs)
	}

	// A write that drops Approved keeps the drop, for validation to refuse.
	drop := old.DeepCopy()
	drop.Status.Conditions = old.Status.Conditions[1:]
	prepareForStatusUpdate(context.Background(), drop, old)
	if errs := validateStatusUpdate(drop, old); len(errs) != 1 || errs[0].Detail != `updates may not remove a condition of type "Approved"` {
		t.Errorf("dropping Approved through /status: %v", errs)
	}
}

func TestPrepareForApproval(t *testing.T) {
	old := validCSR(t)
	old.Status.Certificate = nil
	csr := old.DeepCopy()
	csr.Spec.Username = "mallory"
	csr.Status.Certificate = newCertificate(t)
	csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateApproved, corev1.ConditionTrue)}
	prepareForApproval(context.Background(), csr, old)
	if csr.Spec.Username != "alice" || len(csr.Status.Certificate) != 0 {
		t.Errorf("spec or certificate changed through /approval: %q %d bytes", csr.Spec.Username, len(csr.Status.Certificate))
	}
	if len(csr.Status.Conditions) != 1 || csr.Status.Conditions[0].LastTransitionTime.IsZero() || csr.Status.Conditions[0].LastUpdateTime.IsZero() {
		t.Errorf("conditions = %+v, want Approved, stamped", csr.Status.Conditions)
	}
	if errs := validateApprovalUpdate(csr, old); len(errs) != 0 {
		t.Errorf("the prepared approval does not validate: %v", errs)
	}
}

func TestTable(t *testing.T) {
	approved := cond(certificatesv1.CertificateApproved, corev1.ConditionTrue)
	tests := []struct {
		name      string
		mutate    func(*certificatesv1.CertificateSigningRequest)
		duration  string
		condition string
	}{
		{"pending", func(*certificatesv1.CertificateSigningRequest) {}, "<none>", "Pending"},
		{"approved, one day", func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.ExpirationSeconds = ptr[int32](86400)
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved}
		}, "24h", "Approved"},
		{"issued", func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved}
			c.Status.Certificate = []byte("x")
		}, "<none>", "Approved,Issued"},
		{"failed", func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved, cond(certificatesv1.CertificateFailed, corev1.ConditionTrue)}
		}, "<none>", "Approved,Failed"},
		{"denied wins", func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved, cond(certificatesv1.CertificateDenied, corev1.ConditionTrue)}
		}, "<none>", "Denied"},
	}
	if got := len(table.Columns); got != 6 {
		t.Fatalf("%d columns, want 6", got)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr := validCSR(t)
			tt.mutate(csr)
			row := table.Row(csr)
			want := []interface{}{"csr-1", "<unknown>", certificatesv1.KubeAPIServerClientSignerName, "alice", tt.duration, tt.condition}
			if diff := cmp.Diff(want, row); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFields(t *testing.T) {
	res := Resources()[0]
	fs := res.Fields(validCSR(t))
	if fs["metadata.name"] != "csr-1" || fs["spec.signerName"] != certificatesv1.KubeAPIServerClientSignerName || len(fs) != 2 {
		t.Errorf("fields = %v", fs)
	}
	if fs := res.Fields(res.New()); len(fs) != 2 {
		t.Errorf("fields of an empty object = %v", fs)
	}
}
