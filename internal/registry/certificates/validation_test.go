package certificates

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// newRequest returns a PEM CERTIFICATE REQUEST for cn in orgs, signed by
// a fresh key.
func newRequest(t testing.TB, cn string, orgs ...string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn, Organization: orgs}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// newCertificate returns a PEM CERTIFICATE, self-signed.
func newCertificate(t testing.TB) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "c"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func validCSR(t testing.TB) *certificatesv1.CertificateSigningRequest {
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "csr-1", ResourceVersion: "1"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    newRequest(t, "alice", "staff"),
			SignerName: certificatesv1.KubeAPIServerClientSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
			Username:   "alice",
		},
	}
}

func cond(t certificatesv1.RequestConditionType, s corev1.ConditionStatus) certificatesv1.CertificateSigningRequestCondition {
	return certificatesv1.CertificateSigningRequestCondition{Type: t, Status: s, Reason: "Test"}
}

// wantErr is one expected error: its type, field, and a part of its
// detail ("" for any).
type wantErr struct {
	Type   field.ErrorType
	Field  string
	Detail string
}

func checkErrs(t *testing.T, got field.ErrorList, want []wantErr) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Type != w.Type || g.Field != w.Field || !strings.Contains(g.Detail, w.Detail) {
			t.Errorf("error %d = %v %s %q, want %v %s containing %q", i, g.Type, g.Field, g.Detail, w.Type, w.Field, w.Detail)
		}
	}
}

func TestValidateCreate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*certificatesv1.CertificateSigningRequest)
		want   []wantErr
	}{
		{"valid", func(*certificatesv1.CertificateSigningRequest) {}, nil},
		{"no request", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Request = nil },
			[]wantErr{{field.ErrorTypeInvalid, "spec.request", "PEM block type must be CERTIFICATE REQUEST"}}},
		{"certificate, not request", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Request = newCertificate(t) },
			[]wantErr{{field.ErrorTypeInvalid, "spec.request", "PEM block type must be CERTIFICATE REQUEST"}}},
		{"garbage in the block", func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Request = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte("nope")})
		}, []wantErr{{field.ErrorTypeInvalid, "spec.request", ""}}},
		{"bad signature", func(c *certificatesv1.CertificateSigningRequest) {
			block, _ := pem.Decode(c.Spec.Request)
			req, _ := x509.ParseCertificateRequest(block.Bytes)
			sig := req.Signature
			sig[len(sig)-1] ^= 0xff
			// Re-encode the request with the flipped signature byte:
			// the signature sits at the end of the DER.
			der := append([]byte(nil), block.Bytes...)
			copy(der[len(der)-len(sig):], sig)
			c.Spec.Request = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
		}, []wantErr{{field.ErrorTypeInvalid, "spec.request", ""}}},
		{"no usages", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Usages = nil },
			[]wantErr{{field.ErrorTypeRequired, "spec.usages", ""}}},
		{"unknown usage", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Usages = append(c.Spec.Usages, "flying") },
			[]wantErr{{field.ErrorTypeNotSupported, "spec.usages[2]", `"any", "cert sign"`}}},
		{"duplicate usage", func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Usages = append(c.Spec.Usages, certificatesv1.UsageClientAuth)
		}, []wantErr{{field.ErrorTypeDuplicate, "spec.usages[2]", ""}}},
		{"no signer", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "" },
			[]wantErr{{field.ErrorTypeRequired, "spec.signerName", ""}}},
		{"signer without path", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "example.com" },
			[]wantErr{{field.ErrorTypeInvalid, "spec.signerName", "must be a fully qualified domain and path of the form 'example.com/signer-name'"}}},
		{"signer with two slashes", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "example.com/a/b" },
			[]wantErr{{field.ErrorTypeInvalid, "spec.signerName", "fully qualified domain"}}},
		{"signer domain of one label", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "example/signer" },
			[]wantErr{{field.ErrorTypeInvalid, "spec.signerName", "should be a domain with at least two segments separated by dots"}}},
		{"signer domain upper case", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "Example.com/signer" },
			[]wantErr{{field.ErrorTypeInvalid, "spec.signerName", `validating label "Example"`}}},
		{"signer path bad", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "example.com/Signer_1" },
			[]wantErr{{field.ErrorTypeInvalid, "spec.signerName", `validating label "Signer_1"`}}},
		{"signer path of dotted names", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "example.com/ns.name" }, nil},
		{"legacy signer", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = LegacyUnknownSignerName },
			[]wantErr{{field.ErrorTypeInvalid, "spec.signerName", "the legacy signerName is not allowed via this API version"}}},
		{"signer too long", func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.SignerName = "example.com/" + strings.Repeat("a.", 280) + "a"
		}, []wantErr{{field.ErrorTypeTooLong, "spec.signerName", "571"}}},
		{"expiration under ten minutes", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.ExpirationSeconds = ptr[int32](599) },
			[]wantErr{{field.ErrorTypeInvalid, "spec.expirationSeconds", "may not specify a duration less than 600 seconds (10 minutes)"}}},
		{"expiration of ten minutes", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.ExpirationSeconds = ptr[int32](600) }, nil},
		{"conditions", func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{
				cond(certificatesv1.CertificateApproved, corev1.ConditionFalse),
				cond("", corev1.ConditionTrue),
				cond("Custom", ""),
				cond("Custom", corev1.ConditionUnknown),
				cond(certificatesv1.CertificateDenied, corev1.ConditionTrue),
			}
		}, []wantErr{
			{field.ErrorTypeNotSupported, "status.conditions[0].status", `supported values: "True"`},
			{field.ErrorTypeRequired, "status.conditions[1].type", ""},
			{field.ErrorTypeRequired, "status.conditions[2].status", ""},
			{field.ErrorTypeDuplicate, "status.conditions[3].type", ""},
			{field.ErrorTypeInvalid, "status.conditions", "Approved and Denied conditions are mutually exclusive"},
		}},
		{"certificate not PEM", func(c *certificatesv1.CertificateSigningRequest) { c.Status.Certificate = []byte("nope") },
			[]wantErr{{field.ErrorTypeInvalid, "status.certificate", "must contain at least one CERTIFICATE PEM block"}}},
		{"certificate of other blocks", func(c *certificatesv1.CertificateSigningRequest) { c.Status.Certificate = c.Spec.Request },
			[]wantErr{{field.ErrorTypeInvalid, "status.certificate", `only CERTIFICATE PEM blocks are allowed, found "CERTIFICATE REQUEST"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr := validCSR(t)
			tt.mutate(csr)
			checkErrs(t, validateCreate(csr), tt.want)
		})
	}
}

func ptr[T any](v T) *T { return &v }

// The rules of each write path over a stored request.
func TestValidateWrites(t *testing.T) {
	approved := []certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateApproved, corev1.ConditionTrue)}
	cert := newCertificate(t)
	tests := []struct {
		name     string
		old, new func(*certificatesv1.CertificateSigningRequest)
		validate func(obj, old runtime.Object) field.ErrorList
		want     []wantErr
	}{
		{"approval adds Approved", nil, func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = approved
		}, validateApprovalUpdate, nil},
		{"approval turns Approved to Denied", func(c *certificatesv1.CertificateSigningRequest) { c.Status.Conditions = approved },
			func(c *certificatesv1.CertificateSigningRequest) {
				c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateDenied, corev1.ConditionTrue)}
			}, validateApprovalUpdate, []wantErr{
				{field.ErrorTypeForbidden, "status.conditions", `updates may not remove a condition of type "Approved"`},
			}},
		{"approval adds Denied beside Approved", func(c *certificatesv1.CertificateSigningRequest) { c.Status.Conditions = approved },
			func(c *certificatesv1.CertificateSigningRequest) {
				c.Status.Conditions = append(approved, cond(certificatesv1.CertificateDenied, corev1.ConditionTrue))
			}, validateApprovalUpdate, []wantErr{
				{field.ErrorTypeInvalid, "status.conditions", "Approved and Denied conditions are mutually exclusive"},
			}},
		{"approval sets the certificate", func(c *certificatesv1.CertificateSigningRequest) { c.Status.Conditions = approved },
			func(c *certificatesv1.CertificateSigningRequest) {
				c.Status.Conditions, c.Status.Certificate = approved, cert
			}, validateApprovalUpdate, []wantErr{
				{field.ErrorTypeForbidden, "status.certificate", "updates may not set certificate content"},
			}},
		{"status adds Approved", nil, func(c *certificatesv1.CertificateSigningRequest) { c.Status.Conditions = approved },
			validateStatusUpdate, []wantErr{
				{field.ErrorTypeForbidden, "status.conditions", `updates may not add a condition of type "Approved"`},
			}},
		{"status changes Approved", func(c *certificatesv1.CertificateSigningRequest) { c.Status.Conditions = approved },
			func(c *certificatesv1.CertificateSigningRequest) {
				c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateApproved, corev1.ConditionTrue)}
				c.Status.Conditions[0].Message = "changed"
			}, validateStatusUpdate, []wantErr{
				{field.ErrorTypeForbidden, "status.conditions", `updates may not modify a condition of type "Approved"`},
			}},
		{"status issues an approved request", func(c *certificatesv1.CertificateSigningRequest) { c.Status.Conditions = approved },
			func(c *certificatesv1.CertificateSigningRequest) {
				c.Status.Conditions, c.Status.Certificate = approved, cert
			},
			validateStatusUpdate, nil},
		{"status adds Failed", func(c *certificatesv1.CertificateSigningRequest) { c.Status.Conditions = approved },
			func(c *certificatesv1.CertificateSigningRequest) {
				c.Status.Conditions = append(approved, cond(certificatesv1.CertificateFailed, corev1.ConditionTrue))
			}, validateStatusUpdate, nil},
		{"status issues a pending request", nil, func(c *certificatesv1.CertificateSigningRequest) { c.Status.Certificate = cert },
			validateStatusUpdate, []wantErr{
				{field.ErrorTypeForbidden, "status.certificate", "may only be set once the request is Approved"},
			}},
		{"status replaces the certificate", func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions, c.Status.Certificate = approved, newCertificate(t)
		}, func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions, c.Status.Certificate = approved, cert
		},
			validateStatusUpdate, []wantErr{
				{field.ErrorTypeForbidden, "status.certificate", "updates may not modify existing certificate content"},
			}},
		{"status issues garbage", func(c *certificatesv1.CertificateSigningRequest) { c.Status.Conditions = approved },
			func(c *certificatesv1.CertificateSigningRequest) {
				c.Status.Conditions, c.Status.Certificate = approved, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
			}, validateStatusUpdate, []wantErr{{field.ErrorTypeInvalid, "status.certificate", ""}}},
		{"status removes Failed", func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateFailed, corev1.ConditionTrue)}
		}, func(c *certificatesv1.CertificateSigningRequest) { c.Status.Conditions = nil }, validateStatusUpdate, []wantErr{
			{field.ErrorTypeForbidden, "status.conditions", `updates may not remove a condition of type "Failed"`},
		}},
		{"main resource sets the certificate", func(c *certificatesv1.CertificateSigningRequest) { c.Status.Conditions = approved },
			func(c *certificatesv1.CertificateSigningRequest) {
				c.Status.Conditions, c.Status.Certificate = approved, cert
			},
			validateUpdate, []wantErr{
				{field.ErrorTypeForbidden, "status.certificate", "updates may not set certificate content"},
			}},
		{"stored faults are kept", func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.SignerName = LegacyUnknownSignerName
			c.Spec.Usages = append(c.Spec.Usages, "flying", "flying")
			c.Status.Conditions = append(approved, cond(certificatesv1.CertificateDenied, corev1.ConditionTrue), cond("", corev1.ConditionTrue))
		}, func(c *certificatesv1.CertificateSigningRequest) {
			c.Labels = map[string]string{"a": "b"}
		}, validateUpdate, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := validCSR(t)
			if tt.old != nil {
				tt.old(old)
			}
			csr := old.DeepCopy()
			if tt.new != nil {
				tt.new(csr)
			}
			checkErrs(t, tt.validate(csr, old), tt.want)
		})
	}
}
