package core

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry/certificates"
)

// podCertificateKeyTypes are the key types a kubelet generates for a
// podCertificate projection, in upstream's order (its error lists them
// so).
var podCertificateKeyTypes = []string{"RSA3072", "RSA4096", "ECDSAP256", "ECDSAP384", "ECDSAP521", "ED25519"}

// validatePodCertificateProjection checks a projected volume's
// podCertificate source as upstream does: a valid signer name, user
// annotations with domain-prefixed keys and an annotation-sized total, a
// known key type, maxExpirationSeconds (when given) from an hour to 91
// days (a day for kubernetes.io signers), and at least one of the three
// paths, each local. It returns the paths the source writes, for the
// volume's duplicate-path check.
func validatePodCertificateProjection(p *corev1.PodCertificateProjection, fldPath *field.Path) (field.ErrorList, []string) {
	errs := certificates.ValidateSignerName(fldPath.Child("signerName"), p.SignerName)
	if p.UserAnnotations != nil {
		ap := fldPath.Child("userAnnotations")
		for k := range p.UserAnnotations {
			// Case does not matter to the key's form.
			errs = append(errs, validation.IsDomainPrefixedKey(ap, strings.ToLower(k))...)
		}
		if err := apivalidation.ValidateAnnotationsSize(p.UserAnnotations); err != nil {
			errs = append(errs, field.TooLong(ap, "", apivalidation.TotalAnnotationSizeLimitB))
		}
	}
	known := false
	for _, t := range podCertificateKeyTypes {
		known = known || p.KeyType == t
	}
	if !known {
		errs = append(errs, field.NotSupported(fldPath.Child("keyType"), p.KeyType, podCertificateKeyTypes))
	}
	if e := p.MaxExpirationSeconds; e != nil {
		ep := fldPath.Child("maxExpirationSeconds")
		if *e < certificates.MinMaxExpirationSeconds {
			errs = append(errs, field.Invalid(ep, *e, fmt.Sprintf("if provided, maxExpirationSeconds must be >= %d", certificates.MinMaxExpirationSeconds)))
		}
		limit := int32(certificates.MaxMaxExpirationSeconds)
		if certificates.IsKubernetesSigner(p.SignerName) {
			limit = certificates.KubernetesMaxMaxExpirationSeconds
		}
		if *e > limit {
			errs = append(errs, field.Invalid(ep, *e, fmt.Sprintf("if provided, maxExpirationSeconds must be <= %d", limit)))
		}
	}
	var paths []string
	for _, f := range []struct{ name, path string }{
		{"credentialBundlePath", p.CredentialBundlePath},
		{"keyPath", p.KeyPath},
		{"certificateChainPath", p.CertificateChainPath},
	} {
		if f.path == "" {
			continue
		}
		errs = append(errs, validateLocalNonReservedPath(f.path, fldPath.Child(f.name))...)
		paths = append(paths, f.path)
	}
	if len(paths) == 0 {
		errs = append(errs, field.Required(fldPath, "specify at least one of credentialBundlePath, keyPath, and certificateChainPath"))
	}
	return errs, paths
}
