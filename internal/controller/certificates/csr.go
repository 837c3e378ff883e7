package certificates

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// parseRequest decodes spec.request: a PEM "CERTIFICATE REQUEST" block
// (the first block; anything after it is ignored, as upstream).
func parseRequest(data []byte) (*x509.CertificateRequest, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("PEM block type must be CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate request: %w", err)
	}
	return req, nil
}

// hasCondition reports whether csr has a condition of type t that holds:
// status True or, as upstream reads it, no status at all.
func hasCondition(csr *certv1.CertificateSigningRequest, t certv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == t && (c.Status == "" || c.Status == corev1.ConditionTrue) {
			return true
		}
	}
	return false
}

// approved reports whether csr is Approved and not Denied.
func approved(csr *certv1.CertificateSigningRequest) bool {
	return hasCondition(csr, certv1.CertificateApproved) && !hasCondition(csr, certv1.CertificateDenied)
}

// decided reports whether csr was approved or denied, or has its
// certificate: nothing is left for an approver to do.
func decided(csr *certv1.CertificateSigningRequest) bool {
	return len(csr.Status.Certificate) > 0 ||
		hasCondition(csr, certv1.CertificateApproved) || hasCondition(csr, certv1.CertificateDenied)
}

// condition is a True condition of type t set at now.
func condition(t certv1.RequestConditionType, reason, message string, now time.Time) certv1.CertificateSigningRequestCondition {
	at := metav1.NewTime(now)
	return certv1.CertificateSigningRequestCondition{
		Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: message,
		LastUpdateTime: at, LastTransitionTime: at,
	}
}
