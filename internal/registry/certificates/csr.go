// Package certificates is the registry of the certificates.k8s.io/v1 API
// group: CertificateSigningRequests, with upstream's validation, its three
// write paths and their strategies, `kubectl get csr` columns and the
// spec.signerName field selector; and ClusterTrustBundles
// (clustertrustbundle.go), with upstream's validation, columns and field
// selector.
//
// A CSR is written through three doors, each allowed to change its own
// part, as upstream:
//
//   - the main resource: metadata only; spec and status are kept as
//     stored, silently, as upstream's strategy does;
//   - /approval: status.conditions, where Approved and Denied may be added
//     (kubectl certificate approve|deny);
//   - /status: status.certificate and the conditions other than Approved
//     and Denied (a signer).
//
// What needs the requesting user lives in the CertificateSigningRequests
// admission plugin (internal/admission/csr.go): filling in spec.username,
// uid, groups and extra on create, and the "approve" and "sign" checks on
// the signers resource. This package stays a pure description.
//
// One rule beyond upstream's: status.certificate may be set only once the
// request carries an Approved condition (docs/compatibility.md).
package certificates

import (
	"context"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-io/skiff/internal/registry"
)

// LegacyUnknownSignerName is the signer of v1beta1 requests that named
// none; certificates.k8s.io/v1 refuses it on new requests.
const LegacyUnknownSignerName = "kubernetes.io/legacy-unknown"

// ApprovalSubresource is the subresource through which requests are
// approved or denied.
const ApprovalSubresource = "approval"

// Resources returns the descriptors of certificates.k8s.io/v1.
func Resources() []*registry.Resource {
	return []*registry.Resource{{
		GroupVersion: certificatesv1.SchemeGroupVersion,
		Name:         "certificatesigningrequests",
		Singular:     "certificatesigningrequest",
		Kind:         "CertificateSigningRequest",
		ShortNames:   []string{"csr"},
		Namespaced:   false,
		New:          func() runtime.Object { return &certificatesv1.CertificateSigningRequest{} },
		NewList:      func() runtime.Object { return &certificatesv1.CertificateSigningRequestList{} },
		Strategy: registry.Strategy{
			PrepareForCreate:       prepareForCreate,
			PrepareForUpdate:       prepareForUpdate,
			PrepareForStatusUpdate: prepareForStatusUpdate,
			Validate:               validateCreate,
			ValidateUpdate:         validateUpdate,
			ValidateStatusUpdate:   validateStatusUpdate,
			// Upstream does not care what requests are called.
			NameValidation: registry.NameIsPathSegment,
		},
		Status: true,
		Subresources: []registry.Subresource{{
			Name:             ApprovalSubresource,
			PrepareForUpdate: prepareForApproval,
			ValidateUpdate:   validateApprovalUpdate,
			ResetFields:      []string{"spec", "status.certificate"},
		}},
		Table: table,
		Fields: func(obj runtime.Object) fields.Set {
			csr, _ := obj.(*certificatesv1.CertificateSigningRequest)
			if csr == nil {
				return fields.Set{"metadata.name": "", "spec.signerName": ""}
			}
			return fields.Set{"metadata.name": csr.Name, "spec.signerName": csr.Spec.SignerName}
		},
	}, clusterTrustBundles(), podCertificateRequests()}
}

// prepareForCreate resets status and the requester, which the server
// fills in from the authenticated user (admission): a client can neither
// send a pre-approved request nor speak for someone else.
func prepareForCreate(ctx context.Context, obj runtime.Object) {
	registry.DefaultPrepareForCreate(ctx, obj)
	csr, ok := obj.(*certificatesv1.CertificateSigningRequest)
	if !ok {
		return
	}
	csr.Spec.Username, csr.Spec.UID, csr.Spec.Groups, csr.Spec.Extra = "", "", nil, nil
}

// prepareForUpdate keeps spec and status: after creation a request
// changes only through its subresources.
func prepareForUpdate(_ context.Context, obj, old runtime.Object) {
	csr, ok1 := obj.(*certificatesv1.CertificateSigningRequest)
	oldCSR, ok2 := old.(*certificatesv1.CertificateSigningRequest)
	if !ok1 || !ok2 {
		return
	}
	csr.Spec = *oldCSR.Spec.DeepCopy()
	csr.Status = *oldCSR.Status.DeepCopy()
}

// prepareForStatusUpdate keeps the spec and the Approved and Denied
// conditions as they are when the write keeps their number (a write that
// adds or removes one fails validation instead), and stamps new
// conditions.
func prepareForStatusUpdate(ctx context.Context, obj, old runtime.Object) {
	registry.DefaultPrepareForStatusUpdate(ctx, obj, old)
	csr, ok1 := obj.(*certificatesv1.CertificateSigningRequest)
	oldCSR, ok2 := old.(*certificatesv1.CertificateSigningRequest)
	if !ok1 || !ok2 {
		return
	}
	keepConditions(csr, oldCSR, certificatesv1.CertificateApproved)
	keepConditions(csr, oldCSR, certificatesv1.CertificateDenied)
	stampConditions(csr, oldCSR, metav1.Now())
}

// prepareForApproval keeps everything of old but metadata and the
// conditions, and stamps new conditions.
func prepareForApproval(_ context.Context, obj, old runtime.Object) {
	csr, ok1 := obj.(*certificatesv1.CertificateSigningRequest)
	oldCSR, ok2 := old.(*certificatesv1.CertificateSigningRequest)
	if !ok1 || !ok2 {
		return
	}
	stampConditions(csr, oldCSR, metav1.Now())
	conditions := csr.Status.Conditions
	csr.Spec = *oldCSR.Spec.DeepCopy()
	csr.Status = *oldCSR.Status.DeepCopy()
	csr.Status.Conditions = conditions
}

// keepConditions copies old's conditions of type t over new's, in order,
// when both have as many.
func keepConditions(csr, old *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) {
	oldIdx, newIdx := conditionIndices(old, t), conditionIndices(csr, t)
	if len(oldIdx) != len(newIdx) {
		return
	}
	for i, j := range newIdx {
		csr.Status.Conditions[j] = *old.Status.Conditions[oldIdx[i]].DeepCopy()
	}
}

func conditionIndices(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) []int {
	var out []int
	for i, c := range csr.Status.Conditions {
		if c.Type == t {
			out = append(out, i)
		}
	}
	return out
}

// stampConditions sets lastUpdateTime where it is unset, and
// lastTransitionTime to that of old's condition of the same type and
// status, or to now.
func stampConditions(csr, old *certificatesv1.CertificateSigningRequest, now metav1.Time) {
	for i := range csr.Status.Conditions {
		c := &csr.Status.Conditions[i]
		if c.LastUpdateTime.IsZero() {
			c.LastUpdateTime = now
		}
		if !c.LastTransitionTime.IsZero() {
			continue
		}
		c.LastTransitionTime = now
		for _, oc := range old.Status.Conditions {
			if oc.Type == c.Type && oc.Status == c.Status && !oc.LastTransitionTime.IsZero() {
				c.LastTransitionTime = oc.LastTransitionTime
				break
			}
		}
	}
}

// HasCondition reports whether csr carries a condition of type t with
// status True.
func HasCondition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
