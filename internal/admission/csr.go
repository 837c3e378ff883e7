package admission

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/registry/certificates"
)

// CertificateSigningRequests is what upstream does with the requesting
// user of a CertificateSigningRequest write, in one plugin:
//
//   - create: spec.username, uid, groups and extra become the requesting
//     user's, whatever the client sent (upstream's strategy does this; a
//     skiff strategy does not see the user); and a request to the
//     kubernetes.io/kube-apiserver-client signer may not ask for the
//     system:masters group (CertificateSubjectRestriction);
//   - /approval: the user needs verb "approve" on resource "signers" in
//     group certificates.k8s.io, named after the request's signerName or
//     "<domain>/*" (CertificateApproval), besides "update" on
//     certificatesigningrequests/approval, which the request itself is
//     authorized for;
//   - /status: a write that changes the certificate or the conditions
//     needs verb "sign" on the signer in the same way (CertificateSigning).
//
// Refusals are 403 with upstream's messages.
type CertificateSigningRequests struct {
	// Authorizer decides the signers checks: the server's authorizer.
	Authorizer apiserver.Authorizer
}

// masters is the group no kube-apiserver-client certificate may carry:
// its holder would pass every authorization check.
const masters = "system:masters"

func (p *CertificateSigningRequests) Admit(ctx context.Context, req *apiserver.AdmissionRequest) error {
	if req.Resource.GroupVersion.Group != certificatesv1.GroupName || req.Resource.Name != "certificatesigningrequests" {
		return nil
	}
	csr, _ := req.Obj.(*certificatesv1.CertificateSigningRequest)
	if csr == nil {
		return nil
	}
	u, _ := apiserver.UserFrom(ctx)
	switch {
	case req.Operation == apiserver.Create && req.Sub == "":
		setRequester(csr, u)
		return restrictSubject(req.Name, csr)
	case req.Operation == apiserver.Update && req.Sub == certificates.ApprovalSubresource:
		// The signer as stored: an approval cannot change it, and must
		// not be judged by a changed one.
		old, _ := req.Old.(*certificatesv1.CertificateSigningRequest)
		if old == nil {
			return nil
		}
		if !p.allowedForSigner(ctx, u, "approve", old.Spec.SignerName) {
			return apierrors.NewForbidden(csrGR, req.Name, fmt.Errorf("user not permitted to approve requests with signerName %q", old.Spec.SignerName))
		}
	case req.Operation == apiserver.Update && req.Sub == "status":
		old, _ := req.Old.(*certificatesv1.CertificateSigningRequest)
		if old == nil || (string(old.Status.Certificate) == string(csr.Status.Certificate) &&
			apiequality.Semantic.DeepEqual(old.Status.Conditions, csr.Status.Conditions)) {
			return nil
		}
		if !p.allowedForSigner(ctx, u, "sign", old.Spec.SignerName) {
			return apierrors.NewForbidden(csrGR, req.Name, fmt.Errorf("user not permitted to sign requests with signerName %q", old.Spec.SignerName))
		}
	}
	return nil
}

var csrGR = certificatesv1.Resource("certificatesigningrequests")

// setRequester records who asked.
func setRequester(csr *certificatesv1.CertificateSigningRequest, u *apiserver.User) {
	csr.Spec.Username, csr.Spec.UID, csr.Spec.Groups, csr.Spec.Extra = "", "", nil, nil
	if u == nil {
		return
	}
	csr.Spec.Username, csr.Spec.UID = u.Name, u.UID
	csr.Spec.Groups = slices.Clone(u.Groups)
	if len(u.Extra) > 0 {
		csr.Spec.Extra = make(map[string]certificatesv1.ExtraValue, len(u.Extra))
		for k, v := range u.Extra {
			csr.Spec.Extra[k] = slices.Clone(v)
		}
	}
}

// restrictSubject refuses a kube-apiserver-client request for
// system:masters. A request that does not parse is left to validation
// (422), which upstream runs before this check.
func restrictSubject(name string, csr *certificatesv1.CertificateSigningRequest) error {
	if csr.Spec.SignerName != certificatesv1.KubeAPIServerClientSignerName {
		return nil
	}
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil {
		return nil
	}
	parsed, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil
	}
	if slices.Contains(parsed.Subject.Organization, masters) {
		return apierrors.NewForbidden(csrGR, name, fmt.Errorf("use of %s signer with %s group is not allowed",
			certificatesv1.KubeAPIServerClientSignerName, masters))
	}
	return nil
}

// allowedForSigner asks whether u may verb the signer, by its name or by
// "<domain>/*", as upstream's IsAuthorizedForSignerName. An authorizer
// error counts as a refusal.
func (p *CertificateSigningRequests) allowedForSigner(ctx context.Context, u *apiserver.User, verb, signer string) bool {
	if p.Authorizer == nil || u == nil {
		return false
	}
	domain, _, _ := strings.Cut(signer, "/")
	for _, name := range []string{signer, domain + "/*"} {
		ok, _, err := p.Authorizer.Authorize(ctx, apiserver.Attributes{
			User: u, Verb: verb, APIGroup: certificatesv1.GroupName, APIVersion: "*",
			Resource: "signers", Name: name, ResourceRequest: true,
		})
		if err == nil && ok {
			return true
		}
	}
	return false
}
