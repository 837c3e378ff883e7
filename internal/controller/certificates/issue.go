package certificates

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"slices"
	"time"

	certv1 "k8s.io/api/certificates/v1"
)

// Lifetimes of the certificates csrsigning issues, as upstream's.
const (
	// DefaultSigningDuration is the longest lifetime when the caller sets
	// none (upstream's --cluster-signing-duration default, a year).
	DefaultSigningDuration = 365 * 24 * time.Hour
	// minDuration is the shortest lifetime spec.expirationSeconds gets:
	// twice the backdate.
	minDuration = 10 * time.Minute
	// backdate: NotBefore lies this far in the past, for clocks behind
	// the signer's.
	backdate = 5 * time.Minute
	// short: a certificate living less than this is not shortened by the
	// backdate at its end (5 minutes are about 1% of 8 hours).
	short = 8 * time.Hour
)

// lifetime is how long a certificate lives: the signer's duration
// longest, or what spec.expirationSeconds asks for when that is shorter,
// but no less than ten minutes.
func lifetime(longest time.Duration, expirationSeconds *int32) time.Duration {
	if expirationSeconds == nil {
		return longest
	}
	switch d := time.Duration(*expirationSeconds) * time.Second; {
	case d > longest:
		return longest
	case d < minDuration:
		return minDuration
	default:
		return d
	}
}

var keyUsages = map[certv1.KeyUsage]x509.KeyUsage{
	certv1.UsageSigning:           x509.KeyUsageDigitalSignature,
	certv1.UsageDigitalSignature:  x509.KeyUsageDigitalSignature,
	certv1.UsageContentCommitment: x509.KeyUsageContentCommitment,
	certv1.UsageKeyEncipherment:   x509.KeyUsageKeyEncipherment,
	certv1.UsageKeyAgreement:      x509.KeyUsageKeyAgreement,
	certv1.UsageDataEncipherment:  x509.KeyUsageDataEncipherment,
	certv1.UsageCertSign:          x509.KeyUsageCertSign,
	certv1.UsageCRLSign:           x509.KeyUsageCRLSign,
	certv1.UsageEncipherOnly:      x509.KeyUsageEncipherOnly,
	certv1.UsageDecipherOnly:      x509.KeyUsageDecipherOnly,
}

var extKeyUsages = map[certv1.KeyUsage]x509.ExtKeyUsage{
	certv1.UsageAny:             x509.ExtKeyUsageAny,
	certv1.UsageServerAuth:      x509.ExtKeyUsageServerAuth,
	certv1.UsageClientAuth:      x509.ExtKeyUsageClientAuth,
	certv1.UsageCodeSigning:     x509.ExtKeyUsageCodeSigning,
	certv1.UsageEmailProtection: x509.ExtKeyUsageEmailProtection,
	certv1.UsageSMIME:           x509.ExtKeyUsageEmailProtection,
	certv1.UsageIPsecEndSystem:  x509.ExtKeyUsageIPSECEndSystem,
	certv1.UsageIPsecTunnel:     x509.ExtKeyUsageIPSECTunnel,
	certv1.UsageIPsecUser:       x509.ExtKeyUsageIPSECUser,
	certv1.UsageTimestamping:    x509.ExtKeyUsageTimeStamping,
	certv1.UsageOCSPSigning:     x509.ExtKeyUsageOCSPSigning,
	certv1.UsageMicrosoftSGC:    x509.ExtKeyUsageMicrosoftServerGatedCrypto,
	certv1.UsageNetscapeSGC:     x509.ExtKeyUsageNetscapeServerGatedCrypto,
}

// x509Usages translates the API's usages to a certificate's key usage
// bits and extended key usages (sorted, without duplicates).
func x509Usages(usages []certv1.KeyUsage) (x509.KeyUsage, []x509.ExtKeyUsage, error) {
	var (
		ku  x509.KeyUsage
		eku []x509.ExtKeyUsage
	)
	for _, u := range usages {
		if k, ok := keyUsages[u]; ok {
			ku |= k
		} else if e, ok := extKeyUsages[u]; ok {
			eku = append(eku, e)
		} else {
			return 0, nil, fmt.Errorf("unrecognized usage value: %q", u)
		}
	}
	slices.Sort(eku)
	return ku, slices.Compact(eku), nil
}

// serialLimit: serial numbers are random below 2^128.
var serialLimit = new(big.Int).Lsh(big.NewInt(1), 128)

// issue signs req with the CA (caCert, caKey) for usages, living d from
// now, and returns the certificate in PEM. As upstream's signer: the
// subject and subject alternative names are the request's, its other
// extensions are dropped, the certificate is no CA; NotBefore is backdated
// five minutes, and so is NotAfter unless the certificate is short-lived;
// NotAfter never lies beyond the CA's. The signature algorithm follows the
// CA key's type.
func issue(req *x509.CertificateRequest, usages []certv1.KeyUsage, d time.Duration, caCert *x509.Certificate, caKey crypto.Signer, now time.Time) ([]byte, error) {
	if err := req.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request signature: %w", err)
	}
	ku, eku, err := x509Usages(usages)
	if err != nil {
		return nil, err
	}
	if !now.Before(caCert.NotAfter) {
		return nil, fmt.Errorf("the signing CA expired at %s", caCert.NotAfter.UTC().Format(time.RFC3339))
	}
	notAfter := now.Add(d)
	if d >= short {
		notAfter = notAfter.Add(-backdate)
	}
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	serial, err := rand.Int(rand.Reader, serialLimit)
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               req.Subject,
		DNSNames:              req.DNSNames,
		IPAddresses:           req.IPAddresses,
		EmailAddresses:        req.EmailAddresses,
		URIs:                  req.URIs,
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              ku,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, req.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign certificate for %q: %w", req.Subject.CommonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
