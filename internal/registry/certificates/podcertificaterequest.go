package certificates

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// Upstream's limits on a PodCertificateRequest (k8s.io/api documents
// them; the constants live in upstream's internal API package).
const (
	pcrMaxStubPKCS10RequestSize    = 10 * 1024
	pcrMaxCertificateChainSize     = 100 * 1024
	pcrMinMaxExpirationSeconds     = 60 * 60
	pcrMaxMaxExpirationSeconds     = 91 * 24 * 60 * 60
	pcrKubernetesMaxExpirationSecs = 24 * 60 * 60
	pcrMaxUIDLength                = 128
	pcrNotBeforeSkew               = 5 * time.Minute
	pcrMinLifetime                 = time.Hour
	pcrRefreshMargin               = 10 * time.Minute
)

// The range of a pod certificate's maxExpirationSeconds, shared with pod
// validation of podCertificate projections: at least an hour, at most 91
// days, or a day for a kubernetes.io signer. DefaultMaxExpirationSeconds
// is what a request that names none gets, as upstream defaults it.
const (
	MinMaxExpirationSeconds           = pcrMinMaxExpirationSeconds
	MaxMaxExpirationSeconds           = pcrMaxMaxExpirationSeconds
	KubernetesMaxMaxExpirationSeconds = pcrKubernetesMaxExpirationSecs
	DefaultMaxExpirationSeconds       = 24 * 60 * 60
)

// podCertificateRequests is the descriptor of certificates.k8s.io/v1
// PodCertificateRequests: a kubelet's request, on behalf of one pod, for a
// certificate from a signer. The spec is immutable; a signer writes the
// certificate (or a denial or failure) to status once, and the status is
// immutable after that.
//
// skiff runs no signer of its own: a signer is a client that watches the
// requests of its signerName and writes their status. The kubelet creates
// requests for its pods' podCertificate projections
// (internal/kubelet/podcert); NodeRestriction limits those to the node's
// own pods, and a status write needs the "sign" permission on the signer
// (internal/admission/podcertificaterequest.go), as upstream.
func podCertificateRequests() *registry.Resource {
	return &registry.Resource{
		GroupVersion: certificatesv1.SchemeGroupVersion,
		Name:         "podcertificaterequests",
		Singular:     "podcertificaterequest",
		Kind:         "PodCertificateRequest",
		Namespaced:   true,
		New:          func() runtime.Object { return &certificatesv1.PodCertificateRequest{} },
		NewList:      func() runtime.Object { return &certificatesv1.PodCertificateRequestList{} },
		Strategy: registry.Strategy{
			// Upstream resets status and sets no metadata.generation.
			PrepareForCreate: func(_ context.Context, obj runtime.Object) {
				if r, ok := obj.(*certificatesv1.PodCertificateRequest); ok {
					r.Status = certificatesv1.PodCertificateRequestStatus{}
				}
			},
			PrepareForUpdate: func(_ context.Context, obj, old runtime.Object) {
				r, ok := obj.(*certificatesv1.PodCertificateRequest)
				or, ok2 := old.(*certificatesv1.PodCertificateRequest)
				if ok && ok2 {
					r.Status = or.Status
				}
			},
			// maxExpirationSeconds defaults to a day (upstream's +default).
			Default: func(obj runtime.Object) {
				if r, ok := obj.(*certificatesv1.PodCertificateRequest); ok && r.Spec.MaxExpirationSeconds == nil {
					secs := int32(DefaultMaxExpirationSeconds)
					r.Spec.MaxExpirationSeconds = &secs
				}
			},
			Validate: validatePCRCreate,
			ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
				r, ok := obj.(*certificatesv1.PodCertificateRequest)
				or, ok2 := old.(*certificatesv1.PodCertificateRequest)
				if !ok || !ok2 {
					return nil
				}
				return apivalidation.ValidateImmutableField(r.Spec, or.Spec, field.NewPath("spec"))
			},
			ValidateStatusUpdate: func(obj, old runtime.Object) field.ErrorList {
				r, ok := obj.(*certificatesv1.PodCertificateRequest)
				or, ok2 := old.(*certificatesv1.PodCertificateRequest)
				if !ok || !ok2 {
					return nil
				}
				return validatePCRStatus(r, or, time.Now())
			},
		},
		Status: true,
		Table:  pcrTable,
		Fields: func(obj runtime.Object) fields.Set {
			r, _ := obj.(*certificatesv1.PodCertificateRequest)
			if r == nil {
				return fields.Set{"metadata.name": "", "metadata.namespace": "", "spec.signerName": "", "spec.podName": "", "spec.nodeName": ""}
			}
			return fields.Set{"metadata.name": r.Name, "metadata.namespace": r.Namespace, "spec.signerName": r.Spec.SignerName,
				"spec.podName": r.Spec.PodName, "spec.nodeName": string(r.Spec.NodeName)}
		},
	}
}

var (
	pcrStubPath       = field.NewPath("spec", "stubPKCS10Request")
	pcrChainPath      = field.NewPath("status", "certificateChain")
	pcrNotBeforePath  = field.NewPath("status", "notBefore")
	pcrNotAfterPath   = field.NewPath("status", "notAfter")
	pcrBeginRefresh   = field.NewPath("status", "beginRefreshAt")
	pcrTerminalStates = []string{certificatesv1.PodCertificateRequestConditionTypeIssued,
		certificatesv1.PodCertificateRequestConditionTypeDenied, certificatesv1.PodCertificateRequestConditionTypeFailed}
)

func validatePCRCreate(obj runtime.Object) field.ErrorList {
	r, ok := obj.(*certificatesv1.PodCertificateRequest)
	if !ok {
		return nil
	}
	s := &r.Spec
	sp := field.NewPath("spec")
	errs := ValidateSignerName(sp.Child("signerName"), s.SignerName)
	for k := range s.UnverifiedUserAnnotations {
		errs = append(errs, validation.IsDomainPrefixedKey(sp.Child("unverifiedUserAnnotations"), strings.ToLower(k))...)
	}
	if err := apivalidation.ValidateAnnotationsSize(s.UnverifiedUserAnnotations); err != nil {
		errs = append(errs, field.TooLong(sp.Child("unverifiedUserAnnotations"), "", apivalidation.TotalAnnotationSizeLimitB))
	}
	for _, n := range []struct {
		path, value string
	}{{"podName", s.PodName}, {"serviceAccountName", s.ServiceAccountName}, {"nodeName", string(s.NodeName)}} {
		for _, msg := range validation.IsDNS1123Subdomain(n.value) {
			errs = append(errs, field.Invalid(sp.Child(n.path), n.value, msg))
		}
	}
	for _, u := range []struct {
		path, value string
	}{{"podUID", string(s.PodUID)}, {"serviceAccountUID", string(s.ServiceAccountUID)}, {"nodeUID", string(s.NodeUID)}} {
		if u.value == "" {
			errs = append(errs, field.Invalid(sp.Child(u.path), u.value, "must not be empty"))
		}
		if len(u.value) > pcrMaxUIDLength {
			errs = append(errs, field.TooLong(sp.Child(u.path), u.value, pcrMaxUIDLength))
		}
	}
	if s.MaxExpirationSeconds == nil {
		return append(errs, field.Required(sp.Child("maxExpirationSeconds"), "must be set"))
	}
	maxSecs := int32(pcrMaxMaxExpirationSeconds)
	if IsKubernetesSigner(s.SignerName) {
		maxSecs = pcrKubernetesMaxExpirationSecs
	}
	if v := *s.MaxExpirationSeconds; v < pcrMinMaxExpirationSeconds || v > maxSecs {
		errs = append(errs, field.Invalid(sp.Child("maxExpirationSeconds"), v, fmt.Sprintf("must be in the range [%d, %d]", pcrMinMaxExpirationSeconds, maxSecs)))
	}
	if len(s.StubPKCS10Request) == 0 {
		return append(errs, field.Invalid(sp, field.OmitValueType{}, "exactly one of (stubPKCS10Request) or (pkixPublicKey, proofOfPossession) must be set"))
	}
	return append(errs, validateStubRequest(s.StubPKCS10Request)...)
}

// IsKubernetesSigner reports a signer in kubernetes.io (or a subdomain):
// such signers issue pod certificates of at most a day. Pod validation
// (a podCertificate projection's maxExpirationSeconds) asks it too.
func IsKubernetesSigner(name string) bool {
	host, _, _ := strings.Cut(name, "/")
	return host == "kubernetes.io" || strings.HasSuffix(host, ".kubernetes.io")
}

// validateStubRequest: a signed PKCS#10 request whose key is Ed25519,
// ECDSA on P-256/384/521, or RSA of 3072 or 4096 bits. Its contents are
// not looked at: the signer takes only the key.
func validateStubRequest(der []byte) field.ErrorList {
	if len(der) > pcrMaxStubPKCS10RequestSize {
		return field.ErrorList{field.TooLong(pcrStubPath, der, pcrMaxStubPKCS10RequestSize)}
	}
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return field.ErrorList{field.Invalid(pcrStubPath, field.OmitValueType{}, "must be a valid PKCS#10 CSR")}
	}
	switch pub := req.PublicKey.(type) {
	case ed25519.PublicKey:
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() && pub.Curve != elliptic.P384() && pub.Curve != elliptic.P521() {
			return field.ErrorList{field.Invalid(pcrStubPath, "curve "+pub.Curve.Params().Name, "elliptic public keys must use curve P256, P384, or P521")}
		}
	case *rsa.PublicKey:
		if bits := pub.Size() * 8; bits != 3072 && bits != 4096 {
			return field.ErrorList{field.Invalid(pcrStubPath, fmt.Sprintf("%d-bit modulus", bits), "RSA keys must have modulus size 3072 or 4096")}
		}
	default:
		return field.ErrorList{field.Invalid(pcrStubPath, field.OmitValueType{}, "unknown public key type; supported types are Ed25519, ECDSA, and RSA")}
	}
	if err := req.CheckSignature(); err != nil {
		return field.ErrorList{field.Invalid(pcrStubPath, field.OmitValueType{}, "invalid signature")}
	}
	return nil
}

// validatePCRStatus is upstream's status rule: at most one of the
// terminal conditions (Issued, Denied, Failed), true, and nothing else;
// once one is set the status never changes; Denied and Failed carry
// nothing but conditions; Issued carries a chain whose leaf is for the
// requested key, lives 1 hour to maxExpirationSeconds, starts within 5
// minutes of now, and timestamps that match it.
func validatePCRStatus(r, old *certificatesv1.PodCertificateRequest, now time.Time) field.ErrorList {
	var errs field.ErrorList
	cp := field.NewPath("status", "conditions")
	known := 0
	for i, c := range r.Status.Conditions {
		ip := cp.Index(i)
		switch c.Type {
		case certificatesv1.PodCertificateRequestConditionTypeIssued, certificatesv1.PodCertificateRequestConditionTypeDenied, certificatesv1.PodCertificateRequestConditionTypeFailed:
			known++
			if known > 1 {
				errs = append(errs, field.Invalid(ip.Child("type"), c.Type, `There may be at most one condition with type "Issued", "Denied", or "Failed"`))
			}
			if c.Status != metav1.ConditionTrue {
				errs = append(errs, field.NotSupported(ip.Child("status"), c.Status, []metav1.ConditionStatus{metav1.ConditionTrue}))
			}
		default:
			errs = append(errs, field.NotSupported(ip.Child("type"), c.Type, pcrTerminalStates))
		}
	}
	errs = append(errs, metav1validation.ValidateConditions(r.Status.Conditions, cp)...)
	if len(errs) > 0 {
		return errs
	}
	sp := field.NewPath("status")
	if pcrState(old) != "" {
		return sameStatus(r.Status, old.Status, sp, "immutable after PodCertificateRequest is issued, denied, or failed")
	}
	switch pcrState(r) {
	case certificatesv1.PodCertificateRequestConditionTypeDenied, certificatesv1.PodCertificateRequestConditionTypeFailed:
		return sameStatus(r.Status, certificatesv1.PodCertificateRequestStatus{Conditions: r.Status.Conditions}, sp,
			"non-condition status fields must be empty when denying or failing the PodCertificateRequest")
	case certificatesv1.PodCertificateRequestConditionTypeIssued:
		return validateIssued(r, old, now)
	}
	return sameStatus(r.Status, old.Status, sp, `status is immutable unless transitioning to "Issued", "Denied", or "Failed"`)
}

func sameStatus(a, b certificatesv1.PodCertificateRequestStatus, p *field.Path, detail string) field.ErrorList {
	if apiequality.Semantic.DeepEqual(a, b) {
		return nil
	}
	return field.ErrorList{field.Invalid(p, field.OmitValueType{}, detail)}
}

// pcrState is the request's terminal condition type, "" while pending.
func pcrState(r *certificatesv1.PodCertificateRequest) string {
	for _, c := range r.Status.Conditions {
		switch c.Type {
		case certificatesv1.PodCertificateRequestConditionTypeIssued, certificatesv1.PodCertificateRequestConditionTypeDenied, certificatesv1.PodCertificateRequestConditionTypeFailed:
			if c.Status == metav1.ConditionTrue {
				return c.Type
			}
		}
	}
	return ""
}

func validateIssued(r, old *certificatesv1.PodCertificateRequest, now time.Time) field.ErrorList {
	chain := r.Status.CertificateChain
	if len(chain) > pcrMaxCertificateChainSize {
		return field.ErrorList{field.TooLong(pcrChainPath, "", pcrMaxCertificateChainSize)}
	}
	leafBlock, rest := pem.Decode([]byte(chain))
	if leafBlock == nil {
		return field.ErrorList{field.Invalid(pcrChainPath, chain, "issued certificate chain must contain at least one certificate")}
	}
	if leafBlock.Type != "CERTIFICATE" {
		return field.ErrorList{field.Invalid(pcrChainPath, chain, "issued certificate chain must consist entirely of CERTIFICATE PEM blocks")}
	}
	leaf, err := x509.ParseCertificate(leafBlock.Bytes)
	if err != nil {
		return field.ErrorList{field.Invalid(pcrChainPath, chain, "leaf certificate does not parse as valid X.509")}
	}
	req, err := x509.ParseCertificateRequest(old.Spec.StubPKCS10Request)
	if err != nil {
		return field.ErrorList{field.Invalid(pcrStubPath, field.OmitValueType{}, "must be a valid PKCS#10 CSR")}
	}
	if want, ok := req.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !want.Equal(leaf.PublicKey) {
		return field.ErrorList{field.Invalid(pcrChainPath, chain, "leaf certificate was not issued to the requested public key")}
	}
	st := r.Status
	var errs field.ErrorList
	if st.NotBefore == nil {
		errs = append(errs, field.Required(pcrNotBeforePath, "must be present and consistent with the issued certificate"))
	}
	if st.NotAfter == nil {
		errs = append(errs, field.Required(pcrNotAfterPath, "must be present and consistent with the issued certificate"))
	}
	if st.BeginRefreshAt == nil {
		errs = append(errs, field.Required(pcrBeginRefresh, "must be present and in the range [notbefore+10min, notafter-10min]"))
	}
	if len(errs) > 0 {
		return errs
	}
	switch {
	case !st.NotBefore.Time.Equal(leaf.NotBefore):
		return field.ErrorList{field.Invalid(pcrNotBeforePath, st.NotBefore.Time, "must be set to the NotBefore time encoded in the leaf certificate")}
	case !(st.NotBefore.Time.After(now.Add(-pcrNotBeforeSkew)) && st.NotBefore.Time.Before(now.Add(pcrNotBeforeSkew))):
		return field.ErrorList{field.Invalid(pcrNotBeforePath, st.NotBefore.Time, "must be set to within 5 minutes of kube-apiserver's current time")}
	case !st.NotAfter.Time.Equal(leaf.NotAfter):
		return field.ErrorList{field.Invalid(pcrNotAfterPath, st.NotAfter.Time, "must be set to the NotAfter time encoded in the leaf certificate")}
	}
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	if lifetime < pcrMinLifetime {
		return field.ErrorList{field.Invalid(pcrChainPath, lifetime, "leaf certificate lifetime must be >= 1 hour")}
	}
	if r.Spec.MaxExpirationSeconds != nil && lifetime > time.Duration(*r.Spec.MaxExpirationSeconds)*time.Second {
		return field.ErrorList{field.Invalid(pcrChainPath, lifetime, fmt.Sprintf("leaf certificate lifetime must be <= spec.maxExpirationSeconds (%v)", *r.Spec.MaxExpirationSeconds))}
	}
	if st.BeginRefreshAt.Time.Before(st.NotBefore.Time.Add(pcrRefreshMargin)) {
		return field.ErrorList{field.Invalid(pcrBeginRefresh, st.BeginRefreshAt.Time, "must be at least 10 minutes after status.notBefore")}
	}
	if st.BeginRefreshAt.Time.After(st.NotAfter.Time.Add(-pcrRefreshMargin)) {
		return field.ErrorList{field.Invalid(pcrBeginRefresh, st.BeginRefreshAt.Time, "must be at least 10 minutes before status.notAfter")}
	}
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil
		}
		if b.Type != "CERTIFICATE" {
			return field.ErrorList{field.Invalid(pcrChainPath, chain, "issued certificate chain must consist entirely of CERTIFICATE PEM blocks")}
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return field.ErrorList{field.Invalid(pcrChainPath, chain, "intermediate certificate does not parse as valid X.509")}
		}
	}
}

// pcrTable is upstream's NAME PODNAME SERVICEACCOUNTNAME NODENAME
// SIGNERNAME STATE, with the user annotations under -o wide.
var pcrTable = &registry.Table{
	Columns: []metav1.TableColumnDefinition{
		registry.NameColumn,
		{Name: "PodName", Type: "string", Description: certificatesv1.PodCertificateRequestSpec{}.SwaggerDoc()["podName"]},
		{Name: "ServiceAccountName", Type: "string", Description: certificatesv1.PodCertificateRequestSpec{}.SwaggerDoc()["serviceAccountName"]},
		{Name: "NodeName", Type: "string", Description: certificatesv1.PodCertificateRequestSpec{}.SwaggerDoc()["nodeName"]},
		{Name: "SignerName", Type: "string", Description: certificatesv1.PodCertificateRequestSpec{}.SwaggerDoc()["signerName"]},
		{Name: "State", Type: "string", Description: "Is the request Pending, Issued, Denied, or Failed?"},
		{Name: "UnverifiedUserAnnotations", Type: "string", Priority: 1, Description: certificatesv1.PodCertificateRequestSpec{}.SwaggerDoc()["unverifiedUserAnnotations"]},
	},
	Row: func(obj runtime.Object) []interface{} {
		r, ok := obj.(*certificatesv1.PodCertificateRequest)
		if !ok {
			return nil
		}
		state := pcrState(r)
		if state == "" {
			state = "Pending"
		}
		return []interface{}{r.Name, r.Spec.PodName, r.Spec.ServiceAccountName, string(r.Spec.NodeName), r.Spec.SignerName, state,
			labels.FormatLabels(r.Spec.UnverifiedUserAnnotations)}
	},
}
