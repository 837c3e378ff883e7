package certificates

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-io/skiff/internal/registry"
)

// MaxTrustBundleSize is the largest spec.trustBundle upstream accepts.
const MaxTrustBundleSize = 1 << 20

var (
	bundleSignerPath = field.NewPath("spec", "signerName")
	trustBundlePath  = field.NewPath("spec", "trustBundle")
)

func validateBundleCreate(obj runtime.Object) field.ErrorList {
	b, ok := obj.(*certificatesv1.ClusterTrustBundle)
	if !ok {
		return nil
	}
	return validateBundle(b, true)
}

// validateBundleUpdate checks a bundle over old: spec.signerName is
// immutable, and the trust anchors are parsed only when they changed, as
// upstream, so that a stricter PEM or X.509 parser in a later release
// does not make every write of a stored bundle fail.
func validateBundleUpdate(obj, old runtime.Object) field.ErrorList {
	b, ok1 := obj.(*certificatesv1.ClusterTrustBundle)
	oldB, ok2 := old.(*certificatesv1.ClusterTrustBundle)
	if !ok1 || !ok2 {
		return nil
	}
	errs := validateBundle(b, b.Spec.TrustBundle != oldB.Spec.TrustBundle)
	return append(errs, apimachineryvalidation.ValidateImmutableField(b.Spec.SignerName, oldB.Spec.SignerName, bundleSignerPath)...)
}

// validateBundle checks a bundle's name against its signer, the signer
// name's format, and (when parse) the trust anchors, with upstream's
// messages.
func validateBundle(b *certificatesv1.ClusterTrustBundle, parse bool) field.ErrorList {
	var errs field.ErrorList
	meta := field.NewPath("metadata")
	if b.GenerateName != "" {
		for _, msg := range bundleNameErrors(b.Spec.SignerName, b.GenerateName, true) {
			errs = append(errs, field.Invalid(meta.Child("generateName"), b.GenerateName, msg))
		}
	}
	if b.Name != "" {
		for _, msg := range bundleNameErrors(b.Spec.SignerName, b.Name, false) {
			errs = append(errs, field.Invalid(meta.Child("name"), b.Name, msg))
		}
	}
	if b.Spec.SignerName != "" {
		errs = append(errs, ValidateSignerName(bundleSignerPath, b.Spec.SignerName)...)
	}
	if parse {
		errs = append(errs, validateTrustBundle(b.Spec.TrustBundle)...)
	}
	return errs
}

// bundleNamePrefix is the prefix the name of a bundle linked to signer
// must have: the signer name with "/" turned into ":", then ":"
// ("example.com/foo" → "example.com:foo:").
func bundleNamePrefix(signer string) string {
	return strings.ReplaceAll(signer, "/", ":") + ":"
}

// bundleNameErrors is upstream's ClusterTrustBundle name rule: a bundle
// without a signer has a DNS subdomain name without ":"; a bundle linked
// to a signer is named bundleNamePrefix(signer) followed by a DNS
// subdomain. prefix says that name is a generateName.
func bundleNameErrors(signer, name string, prefix bool) []string {
	if signer == "" {
		if strings.Contains(name, ":") {
			return []string{`ClusterTrustBundle without signer name must not have ":" in its name`}
		}
		return registry.NameIsDNSSubdomain(name, prefix)
	}
	want := bundleNamePrefix(signer)
	rest, ok := strings.CutPrefix(name, want)
	if !ok {
		return []string{fmt.Sprintf("ClusterTrustBundle for signerName %s must be named with prefix %s", signer, want)}
	}
	return registry.NameIsDNSSubdomain(rest, prefix)
}

// validateTrustBundle checks spec.trustBundle as upstream: at most
// MaxTrustBundleSize bytes of CERTIFICATE PEM blocks without headers,
// each a CA certificate with valid basic constraints, at least one, and
// no certificate twice. Blocks are numbered from 0 in the messages;
// bytes between blocks are ignored.
func validateTrustBundle(bundle string) field.ErrorList {
	if len(bundle) > MaxTrustBundleSize {
		return field.ErrorList{field.TooLong(trustBundlePath, "", MaxTrustBundleSize)}
	}
	const omitted = "<value omitted>"
	var errs field.ErrorList
	invalid := func(format string, args ...any) {
		errs = append(errs, field.Invalid(trustBundlePath, omitted, fmt.Sprintf(format, args...)))
	}
	seen := map[string][]int{}
	var order []string // first sight of each certificate, for stable messages
	rest := []byte(bundle)
	for i := 0; ; i++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != certificateBlockType {
			invalid("entry %d has bad block type: %v", i, b.Type)
			continue
		}
		if len(b.Headers) != 0 {
			invalid("entry %d has PEM block headers", i)
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			invalid("entry %d does not parse as X.509", i)
			continue
		}
		if !cert.IsCA {
			invalid("entry %d does not have the CA bit set", i)
			continue
		}
		if !cert.BasicConstraintsValid {
			invalid("entry %d has invalid basic constraints", i)
			continue
		}
		k := string(b.Bytes)
		if _, ok := seen[k]; !ok {
			order = append(order, k)
		}
		seen[k] = append(seen[k], i)
	}
	// A malformed block says enough; do not add missing or duplicate
	// anchors on top of it.
	if len(errs) > 0 {
		return errs
	}
	if len(seen) == 0 {
		invalid("at least one trust anchor must be provided")
	}
	for _, k := range order {
		if idx := seen[k]; len(idx) > 1 {
			invalid("duplicate trust anchor (indices %v)", idx)
		}
	}
	return errs
}
