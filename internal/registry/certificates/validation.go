package certificates

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Block types of the PEM data a request carries.
const (
	requestBlockType     = "CERTIFICATE REQUEST"
	certificateBlockType = "CERTIFICATE"
)

// knownUsages are the key usages a request may ask for, sorted as
// upstream lists them in its error.
var knownUsages = func() []string {
	u := []string{}
	for _, k := range []certificatesv1.KeyUsage{
		certificatesv1.UsageSigning, certificatesv1.UsageDigitalSignature, certificatesv1.UsageContentCommitment,
		certificatesv1.UsageKeyEncipherment, certificatesv1.UsageKeyAgreement, certificatesv1.UsageDataEncipherment,
		certificatesv1.UsageCertSign, certificatesv1.UsageCRLSign, certificatesv1.UsageEncipherOnly,
		certificatesv1.UsageDecipherOnly, certificatesv1.UsageAny, certificatesv1.UsageServerAuth,
		certificatesv1.UsageClientAuth, certificatesv1.UsageCodeSigning, certificatesv1.UsageEmailProtection,
		certificatesv1.UsageSMIME, certificatesv1.UsageIPsecEndSystem, certificatesv1.UsageIPsecTunnel,
		certificatesv1.UsageIPsecUser, certificatesv1.UsageTimestamping, certificatesv1.UsageOCSPSigning,
		certificatesv1.UsageMicrosoftSGC, certificatesv1.UsageNetscapeSGC,
	} {
		u = append(u, string(k))
	}
	slices.Sort(u)
	return u
}()

// trueOnly are the condition types whose status may only be True.
var trueOnly = []certificatesv1.RequestConditionType{
	certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed,
}

var (
	specPath        = field.NewPath("spec")
	conditionsPath  = field.NewPath("status", "conditions")
	certificatePath = field.NewPath("status", "certificate")
)

// checks says what a write may do, and which faults of the stored object
// it may keep, as upstream's certificateValidationOptions: a fault already
// stored (written by an older server) does not make every later write
// fail.
type checks struct {
	// setApproval lets the write add and change Approved and Denied
	// conditions (/approval); setCertificate lets it set
	// status.certificate (/status).
	setApproval, setCertificate bool

	bothApprovedAndDenied   bool
	legacySigner            bool
	duplicateConditionTypes bool
	emptyConditionType      bool
	anyCertificate          bool
	unknownUsages           bool
	duplicateUsages         bool
}

// checksFor returns the checks of a write of csr over old (nil on create).
func checksFor(csr, old *certificatesv1.CertificateSigningRequest) checks {
	if old == nil {
		return checks{}
	}
	var c checks
	seen := map[certificatesv1.RequestConditionType]bool{}
	for _, cond := range old.Status.Conditions {
		c.duplicateConditionTypes = c.duplicateConditionTypes || seen[cond.Type]
		c.emptyConditionType = c.emptyConditionType || cond.Type == ""
		seen[cond.Type] = true
	}
	c.bothApprovedAndDenied = seen[certificatesv1.CertificateApproved] && seen[certificatesv1.CertificateDenied]
	c.legacySigner = old.Spec.SignerName == LegacyUnknownSignerName
	// A write that leaves the certificate alone is not asked to fix it.
	c.anyCertificate = bytes.Equal(csr.Status.Certificate, old.Status.Certificate) || validateCertificate(old.Status.Certificate) != nil
	seenUsage := map[certificatesv1.KeyUsage]bool{}
	for _, u := range old.Spec.Usages {
		c.unknownUsages = c.unknownUsages || !slices.Contains(knownUsages, string(u))
		c.duplicateUsages = c.duplicateUsages || seenUsage[u]
		seenUsage[u] = true
	}
	return c
}

func validateCreate(obj runtime.Object) field.ErrorList {
	csr, ok := obj.(*certificatesv1.CertificateSigningRequest)
	if !ok {
		return nil
	}
	return validateCSR(csr, checksFor(csr, nil))
}

// validateUpdate checks a write to the main resource, which may change
// neither the conditions of approval nor the certificate.
func validateUpdate(obj, old runtime.Object) field.ErrorList {
	return validateWrite(obj, old, func(*checks) {})
}

// validateStatusUpdate checks a write to /status, which may set the
// certificate.
func validateStatusUpdate(obj, old runtime.Object) field.ErrorList {
	return validateWrite(obj, old, func(c *checks) { c.setCertificate = true })
}

// validateApprovalUpdate checks a write to /approval, which may add
// Approved or Denied.
func validateApprovalUpdate(obj, old runtime.Object) field.ErrorList {
	return validateWrite(obj, old, func(c *checks) { c.setApproval = true })
}

func validateWrite(obj, old runtime.Object, allow func(*checks)) field.ErrorList {
	csr, ok1 := obj.(*certificatesv1.CertificateSigningRequest)
	oldCSR, ok2 := old.(*certificatesv1.CertificateSigningRequest)
	if !ok1 || !ok2 {
		return nil
	}
	c := checksFor(csr, oldCSR)
	allow(&c)
	return validateCSRUpdate(csr, oldCSR, c)
}

// validateCSR checks a request as upstream's validation does.
func validateCSR(csr *certificatesv1.CertificateSigningRequest, c checks) field.ErrorList {
	var errs field.ErrorList
	if err := checkRequest(csr.Spec.Request); err != nil {
		errs = append(errs, field.Invalid(specPath.Child("request"), csr.Spec.Request, err.Error()))
	}
	usages := specPath.Child("usages")
	if len(csr.Spec.Usages) == 0 {
		errs = append(errs, field.Required(usages, ""))
	}
	seen := map[certificatesv1.KeyUsage]bool{}
	for i, u := range csr.Spec.Usages {
		if !c.unknownUsages && !slices.Contains(knownUsages, string(u)) {
			errs = append(errs, field.NotSupported(usages.Index(i), u, knownUsages))
		}
		if !c.duplicateUsages && seen[u] {
			errs = append(errs, field.Duplicate(usages.Index(i), u))
		}
		seen[u] = true
	}
	signer := specPath.Child("signerName")
	if !c.legacySigner && csr.Spec.SignerName == LegacyUnknownSignerName {
		errs = append(errs, field.Invalid(signer, csr.Spec.SignerName, "the legacy signerName is not allowed via this API version"))
	} else {
		errs = append(errs, ValidateSignerName(signer, csr.Spec.SignerName)...)
	}
	if s := csr.Spec.ExpirationSeconds; s != nil && *s < 600 {
		errs = append(errs, field.Invalid(specPath.Child("expirationSeconds"), *s, "may not specify a duration less than 600 seconds (10 minutes)"))
	}
	errs = append(errs, validateConditions(csr, c)...)
	if !c.anyCertificate {
		if err := validateCertificate(csr.Status.Certificate); err != nil {
			errs = append(errs, field.Invalid(certificatePath, "<certificate data>", err.Error()))
		}
	}
	return errs
}

// checkRequest parses a PEM CERTIFICATE REQUEST and checks its
// signature, which proves that the requester holds the key.
func checkRequest(data []byte) error {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != requestBlockType {
		return errors.New("PEM block type must be CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return err
	}
	return req.CheckSignature()
}

// validateCertificate checks status.certificate: empty, or one or more
// CERTIFICATE blocks without headers, each holding certificates.
func validateCertificate(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	blocks := 0
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != certificateBlockType {
			return fmt.Errorf("only CERTIFICATE PEM blocks are allowed, found %q", block.Type)
		}
		if len(block.Headers) != 0 {
			return errors.New("no PEM block headers are permitted")
		}
		blocks++
		certs, err := x509.ParseCertificates(block.Bytes)
		if err != nil {
			return err
		}
		if len(certs) == 0 {
			return errors.New("found CERTIFICATE PEM block containing 0 certificates")
		}
		data = rest
	}
	if blocks == 0 {
		return errors.New("must contain at least one CERTIFICATE PEM block")
	}
	return nil
}

func validateConditions(csr *certificatesv1.CertificateSigningRequest, c checks) field.ErrorList {
	var errs field.ErrorList
	seen := map[certificatesv1.RequestConditionType]bool{}
	approved, denied := false, false
	for i, cond := range csr.Status.Conditions {
		at := conditionsPath.Index(i)
		if !c.emptyConditionType && cond.Type == "" {
			errs = append(errs, field.Required(at.Child("type"), ""))
		}
		allowed := []string{string(corev1.ConditionFalse), string(corev1.ConditionTrue), string(corev1.ConditionUnknown)}
		if slices.Contains(trueOnly, cond.Type) {
			allowed = []string{string(corev1.ConditionTrue)}
		}
		switch {
		case cond.Status == "":
			errs = append(errs, field.Required(at.Child("status"), ""))
		case !slices.Contains(allowed, string(cond.Status)):
			errs = append(errs, field.NotSupported(at.Child("status"), cond.Status, allowed))
		}
		if !c.bothApprovedAndDenied {
			switch cond.Type {
			case certificatesv1.CertificateApproved:
				approved = true
				if denied {
					errs = append(errs, field.Invalid(conditionsPath, cond.Type, "Approved and Denied conditions are mutually exclusive"))
				}
			case certificatesv1.CertificateDenied:
				denied = true
				if approved {
					errs = append(errs, field.Invalid(conditionsPath, cond.Type, "Approved and Denied conditions are mutually exclusive"))
				}
			}
		}
		if !c.duplicateConditionTypes && seen[cond.Type] {
			errs = append(errs, field.Duplicate(at.Child("type"), cond.Type))
		}
		seen[cond.Type] = true
	}
	return errs
}

// validateCSRUpdate checks a write of csr over old: the request itself,
// no Approved, Denied or Failed condition removed, Approved and Denied
// added or changed only through /approval, and the certificate set only
// through /status, once, on an approved request.
func validateCSRUpdate(csr, old *certificatesv1.CertificateSigningRequest, c checks) field.ErrorList {
	errs := validateCSR(csr, c)
	for _, t := range trueOnly {
		if len(conditionsOf(csr, t)) < len(conditionsOf(old, t)) {
			errs = append(errs, field.Forbidden(conditionsPath, fmt.Sprintf("updates may not remove a condition of type %q", t)))
		}
	}
	if !c.setApproval {
		for _, t := range []certificatesv1.RequestConditionType{certificatesv1.CertificateApproved, certificatesv1.CertificateDenied} {
			now, was := conditionsOf(csr, t), conditionsOf(old, t)
			switch {
			case len(now) < len(was):
				// Reported above.
			case len(now) > len(was):
				errs = append(errs, field.Forbidden(conditionsPath, fmt.Sprintf("updates may not add a condition of type %q", t)))
			case !apiequality.Semantic.DeepEqual(was, now):
				errs = append(errs, field.Forbidden(conditionsPath, fmt.Sprintf("updates may not modify a condition of type %q\n%v", t, diff.Diff(was, now))))
			}
		}
	}
	if !bytes.Equal(csr.Status.Certificate, old.Status.Certificate) {
		switch {
		case !c.setCertificate:
			errs = append(errs, field.Forbidden(certificatePath, "updates may not set certificate content"))
		case len(old.Status.Certificate) > 0:
			errs = append(errs, field.Forbidden(certificatePath, "updates may not modify existing certificate content"))
		case !HasCondition(csr, certificatesv1.CertificateApproved):
			// skiff's rule: upstream leaves this to the signers.
			errs = append(errs, field.Forbidden(certificatePath, "may only be set once the request is Approved"))
		}
	}
	return errs
}

func conditionsOf(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) []certificatesv1.CertificateSigningRequestCondition {
	var out []certificatesv1.CertificateSigningRequestCondition
	for _, c := range csr.Status.Conditions {
		if c.Type == t {
			out = append(out, c)
		}
	}
	return out
}

// ValidateSignerName checks a signer name as upstream does: a fully
// qualified domain of at least two DNS labels, one "/", and a path of
// DNS subdomains joined by dots, at most 571 characters in all (room for
// "<fqdn>/<namespace>.<name>").
func ValidateSignerName(fldPath *field.Path, name string) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	parts := strings.Split(name, "/")
	if len(parts) != 2 {
		return field.ErrorList{field.Invalid(fldPath, name, "must be a fully qualified domain and path of the form 'example.com/signer-name'")}
	}
	domain, path := parts[0], parts[1]
	var errs field.ErrorList
	if len(domain) > validation.DNS1123SubdomainMaxLength {
		errs = append(errs, field.TooLong(fldPath, "", validation.DNS1123SubdomainMaxLength))
	}
	labels := strings.Split(domain, ".")
	for _, l := range labels {
		msgs := validation.IsDNS1123Label(l)
		for _, msg := range msgs {
			errs = append(errs, field.Invalid(fldPath, domain, fmt.Sprintf("validating label %q: %s", l, msg)))
		}
		if len(msgs) > 0 {
			break // the rest would say the same
		}
	}
	if len(labels) < 2 {
		errs = append(errs, field.Invalid(fldPath, domain, "should be a domain with at least two segments separated by dots"))
	}
	for _, l := range strings.Split(path, ".") {
		msgs := validation.IsDNS1123Subdomain(l)
		for _, msg := range msgs {
			errs = append(errs, field.Invalid(fldPath, path, fmt.Sprintf("validating label %q: %s", l, msg)))
		}
		if len(msgs) > 0 {
			break
		}
	}
	maxLen := validation.DNS1123SubdomainMaxLength + (validation.DNS1123SubdomainMaxLength + validation.DNS1123LabelMaxLength + 1) + 1
	if len(name) > maxLen {
		errs = append(errs, field.TooLong(fldPath, "", maxLen))
	}
	return errs
}
