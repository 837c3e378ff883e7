package admission

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/registry/certificates"
)

// signerGrants allows verb on the signers resource names it lists, and
// records what it was asked.
type signerGrants struct {
	allow map[string][]string // verb -> resource names
	asked []apiserver.Attributes
	err   error
}

func (g *signerGrants) Authorize(_ context.Context, a apiserver.Attributes) (bool, string, error) {
	g.asked = append(g.asked, a)
	if g.err != nil {
		return false, "", g.err
	}
	ok := a.APIGroup == certificatesv1.GroupName && a.Resource == "signers" && a.ResourceRequest &&
		slices.Contains(g.allow[a.Verb], a.Name)
	return ok, "", nil
}

func csrRequest(t *testing.T, orgs ...string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x", Organization: orgs}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestCertificateSigningRequestsCreate(t *testing.T) {
	res := certificates.Resources()[0]
	alice := &apiserver.User{Name: "alice", UID: "u-1", Groups: []string{"staff", "system:authenticated"},
		Extra: map[string][]string{"scopes": {"a", "b"}}}
	p := &CertificateSigningRequests{Authorizer: &signerGrants{}}
	ctx := apiserver.WithUser(context.Background(), alice)

	csr := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: certificatesv1.CertificateSigningRequestSpec{
		Request: csrRequest(t, "staff"), SignerName: "example.com/s", Username: "mallory", Groups: []string{"system:masters"}}}
	if err := p.Admit(ctx, &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: res, Name: "c", Obj: csr}); err != nil {
		t.Fatal(err)
	}
	want := certificatesv1.CertificateSigningRequestSpec{Request: csr.Spec.Request, SignerName: "example.com/s",
		Username: "alice", UID: "u-1", Groups: []string{"staff", "system:authenticated"},
		Extra: map[string]certificatesv1.ExtraValue{"scopes": {"a", "b"}}}
	if diff := cmp.Diff(want, csr.Spec); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
	alice.Groups[0] = "changed"
	if csr.Spec.Groups[0] != "staff" {
		t.Error("spec.groups shares the user's slice")
	}

	// CertificateSubjectRestriction.
	masters := &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{
		Request: csrRequest(t, "system:masters"), SignerName: certificatesv1.KubeAPIServerClientSignerName}}
	err := p.Admit(ctx, &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: res, Name: "m", Obj: masters})
	const wantMsg = `certificatesigningrequests.certificates.k8s.io "m" is forbidden: use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed`
	if !apierrors.IsForbidden(err) || err.Error() != wantMsg {
		t.Errorf("a kube-apiserver-client request for system:masters: %v, want 403 %q", err, wantMsg)
	}
	masters.Spec.SignerName = "example.com/s"
	if err := p.Admit(ctx, &apiserver.AdmissionRequest{Operation: apiserver.Create, Resource: res, Name: "m", Obj: masters}); err != nil {
		t.Errorf("system:masters to another signer: %v", err)
	}
}

func TestCertificateSigningRequestsApprovalAndSigning(t *testing.T) {
	res := certificates.Resources()[0]
	old := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "c"},
		Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: "example.com/s"}}
	approved := old.DeepCopy()
	approved.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}}
	issued := approved.DeepCopy()
	issued.Status.Certificate = []byte("cert")
	// An approval that also renames the signer is judged by the stored one.
	renamed := approved.DeepCopy()
	renamed.Spec.SignerName = "other.com/s"

	tests := []struct {
		name     string
		sub      string
		obj, old *certificatesv1.CertificateSigningRequest
		allow    map[string][]string
		err      error
		want     string // "" for admitted
	}{
		{"approve by name", "approval", approved, old, map[string][]string{"approve": {"example.com/s"}}, nil, ""},
		{"approve by domain", "approval", approved, old, map[string][]string{"approve": {"example.com/*"}}, nil, ""},
		{"approve without", "approval", approved, old, map[string][]string{"sign": {"example.com/s"}}, nil,
			`certificatesigningrequests.certificates.k8s.io "c" is forbidden: user not permitted to approve requests with signerName "example.com/s"`},
		{"approve, authorizer fails", "approval", approved, old, nil, errors.New("down"),
			`certificatesigningrequests.certificates.k8s.io "c" is forbidden: user not permitted to approve requests with signerName "example.com/s"`},
		{"approve the stored signer", "approval", renamed, old, map[string][]string{"approve": {"other.com/s"}}, nil,
			`certificatesigningrequests.certificates.k8s.io "c" is forbidden: user not permitted to approve requests with signerName "example.com/s"`},
		{"sign by domain", "status", issued, approved, map[string][]string{"sign": {"example.com/*"}}, nil, ""},
		{"sign without", "status", issued, approved, map[string][]string{"approve": {"example.com/s"}}, nil,
			`certificatesigningrequests.certificates.k8s.io "c" is forbidden: user not permitted to sign requests with signerName "example.com/s"`},
		{"status without change", "status", approved, approved, nil, nil, ""},
		{"main resource", "", approved, approved, nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &signerGrants{allow: tt.allow, err: tt.err}
			p := &CertificateSigningRequests{Authorizer: g}
			ctx := apiserver.WithUser(context.Background(), &apiserver.User{Name: "bob"})
			err := p.Admit(ctx, &apiserver.AdmissionRequest{Operation: apiserver.Update, Resource: res, Sub: tt.sub, Name: "c",
				Obj: tt.obj.DeepCopy(), Old: tt.old.DeepCopy()})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (!apierrors.IsForbidden(err) || err.Error() != tt.want):
				t.Errorf("err = %v, want 403 %q", err, tt.want)
			}
			for _, a := range g.asked {
				if a.User == nil || a.User.Name != "bob" || a.APIVersion != "*" {
					t.Errorf("asked %+v, want bob's attributes with apiVersion *", a)
				}
			}
		})
	}
}
