package admission

import (
	"context"
	"fmt"

	certificatesv1 "k8s.io/api/certificates/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/apiserver"
)

// PodCertificateRequestSigning is upstream's check on a
// PodCertificateRequest status write (its status strategy's): a write
// that changes the status needs verb "sign" on resource "signers" in
// group certificates.k8s.io, named after the request's signerName or
// "<domain>/*". A refusal is upstream's 422 on spec.signerName. A skiff
// strategy does not see the user, so the check is an admission plugin.
type PodCertificateRequestSigning struct {
	// Authorizer decides the signers check: the server's authorizer.
	Authorizer apiserver.Authorizer
}

func (p *PodCertificateRequestSigning) Admit(ctx context.Context, req *apiserver.AdmissionRequest) error {
	if req.Resource.GroupVersion.Group != certificatesv1.GroupName || req.Resource.Name != "podcertificaterequests" ||
		req.Operation != apiserver.Update || req.Sub != "status" {
		return nil
	}
	pcr, _ := req.Obj.(*certificatesv1.PodCertificateRequest)
	old, _ := req.Old.(*certificatesv1.PodCertificateRequest)
	if pcr == nil || old == nil || apiequality.Semantic.DeepEqual(pcr.Status, old.Status) {
		return nil
	}
	u, _ := apiserver.UserFrom(ctx)
	// The signer as stored: a status write cannot change it.
	signers := CertificateSigningRequests{Authorizer: p.Authorizer}
	if signers.allowedForSigner(ctx, u, "sign", old.Spec.SignerName) {
		return nil
	}
	name := ""
	if u != nil {
		name = u.Name
	}
	return apierrors.NewInvalid(certificatesv1.Kind("PodCertificateRequest"), old.Name, field.ErrorList{
		field.Forbidden(field.NewPath("spec", "signerName"), fmt.Sprintf("User %q is not permitted to \"sign\" for signer %q", name, old.Spec.SignerName)),
	})
}
