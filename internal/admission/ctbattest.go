package admission

import (
	"context"
	"fmt"

	certificatesv1 "k8s.io/api/certificates/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/skiff-io/skiff/internal/apiserver"
)

// ClusterTrustBundleAttest is upstream's ClusterTrustBundleAttest plugin:
// creating or updating a ClusterTrustBundle that names a signer needs verb
// "attest" on resource "signers" in group certificates.k8s.io, named
// after the signer or "<domain>/*", besides the write itself. A bundle
// without a signer needs nothing more, and neither does an update that
// changes only what the garbage collector writes (owner references,
// finalizers), so that storage migration and the collector keep working.
// It belongs in the validating phase: the signer name it checks has been
// validated, and spec.signerName cannot change on update.
//
// Refusals are 403 with upstream's message.
type ClusterTrustBundleAttest struct {
	// Authorizer decides the attest check: the server's authorizer.
	Authorizer apiserver.Authorizer
}

var ctbGR = certificatesv1.Resource("clustertrustbundles")

func (p *ClusterTrustBundleAttest) Admit(ctx context.Context, req *apiserver.AdmissionRequest) error {
	if req.Resource.GroupVersion.Group != certificatesv1.GroupName || req.Resource.Name != "clustertrustbundles" || req.Sub != "" {
		return nil
	}
	if req.Operation != apiserver.Create && req.Operation != apiserver.Update {
		return nil
	}
	b, _ := req.Obj.(*certificatesv1.ClusterTrustBundle)
	if b == nil || b.Spec.SignerName == "" {
		return nil
	}
	if req.Operation == apiserver.Update && onlyGCFieldsChanged(b, req.Old) {
		return nil
	}
	u, _ := apiserver.UserFrom(ctx)
	// The signer check of the CertificateSigningRequests plugin.
	signers := &CertificateSigningRequests{Authorizer: p.Authorizer}
	if !signers.allowedForSigner(ctx, u, "attest", b.Spec.SignerName) {
		return apierrors.NewForbidden(ctbGR, req.Name, fmt.Errorf("user not permitted to attest for signerName %q", b.Spec.SignerName))
	}
	return nil
}

// onlyGCFieldsChanged is upstream's IsOnlyMutatingGCFields: obj equals old
// but for owner references, finalizers, selfLink and managedFields (and
// resourceVersion, which the server may have filled in already).
func onlyGCFieldsChanged(obj *certificatesv1.ClusterTrustBundle, old any) bool {
	oldB, _ := old.(*certificatesv1.ClusterTrustBundle)
	if oldB == nil {
		return false
	}
	c := obj.DeepCopy()
	c.TypeMeta = oldB.TypeMeta
	c.OwnerReferences = oldB.OwnerReferences
	c.Finalizers = oldB.Finalizers
	c.SelfLink = oldB.SelfLink
	c.ManagedFields = oldB.ManagedFields
	c.ResourceVersion = oldB.ResourceVersion
	return apiequality.Semantic.DeepEqual(c, oldB)
}
