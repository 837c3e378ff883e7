package certificates

import (
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	certv1 "k8s.io/api/certificates/v1"
)

// The checks upstream's signers make of a request before signing it, and
// that its approver makes before approving a node client request. Their
// messages are upstream's: a failed check's message becomes the Failed
// condition's.

// Subject and names of a node's certificates (pki.NodeUserPrefix,
// pki.NodesOrganization: the identity the Node authorizer expects).
const (
	nodeUserPrefix    = "system:node:"
	nodesOrganization = "system:nodes"
)

// Upstream's messages, capitals and all.
var (
	errNotNodesOrg  = errors.New("subject organization is not system:nodes")
	errNotNodeName  = errors.New("subject common name does not begin with system:node:")
	errNeedDNSOrIP  = errors.New("DNS or IP subjectAltName is required")
	errDNSNotAllow  = errors.New("DNS subjectAltNames are not allowed")
	errEmailNoAllow = errors.New("Email subjectAltNames are not allowed")
	errIPNotAllow   = errors.New("IP subjectAltNames are not allowed")
	errURINotAllow  = errors.New("URI subjectAltNames are not allowed")
)

type usageSet map[certv1.KeyUsage]bool

func setOf(usages ...certv1.KeyUsage) usageSet {
	s := usageSet{}
	for _, u := range usages {
		s[u] = true
	}
	return s
}

// names lists the set's usages sorted, as upstream's messages print them.
func (s usageSet) names() []string {
	out := make([]string, 0, len(s))
	for u := range s {
		out = append(out, string(u))
	}
	slices.Sort(out)
	return out
}

// A kubelet's certificates: key encipherment is for RSA keys and may be
// left out.
var (
	kubeletClientUsages       = setOf(certv1.UsageDigitalSignature, certv1.UsageKeyEncipherment, certv1.UsageClientAuth)
	kubeletClientUsagesNoRSA  = setOf(certv1.UsageDigitalSignature, certv1.UsageClientAuth)
	kubeletServingUsages      = setOf(certv1.UsageDigitalSignature, certv1.UsageKeyEncipherment, certv1.UsageServerAuth)
	kubeletServingUsagesNoRSA = setOf(certv1.UsageDigitalSignature, certv1.UsageServerAuth)
)

func isNodesOrg(req *x509.CertificateRequest) bool {
	return len(req.Subject.Organization) == 1 && req.Subject.Organization[0] == nodesOrganization
}

// validateKubeletClient checks a kubelet client certificate request:
// subject O=system:nodes, CN=system:node:<name>, no subject alternative
// names, usages digital signature and client auth (and key
// encipherment, or not).
func validateKubeletClient(req *x509.CertificateRequest, usages []certv1.KeyUsage) error {
	switch {
	case !isNodesOrg(req):
		return errNotNodesOrg
	case len(req.DNSNames) > 0:
		return errDNSNotAllow
	case len(req.EmailAddresses) > 0:
		return errEmailNoAllow
	case len(req.IPAddresses) > 0:
		return errIPNotAllow
	case len(req.URIs) > 0:
		return errURINotAllow
	case !strings.HasPrefix(req.Subject.CommonName, nodeUserPrefix):
		return errNotNodeName
	}
	if u := setOf(usages...); !maps.Equal(u, kubeletClientUsages) && !maps.Equal(u, kubeletClientUsagesNoRSA) {
		return fmt.Errorf("usages did not match %v", kubeletClientUsages.names())
	}
	return nil
}

// validateKubeletServing checks a kubelet serving certificate request:
// subject O=system:nodes, CN=system:node:<name>, at least one DNS or IP
// subject alternative name and no others, usages digital signature and
// server auth (and key encipherment, or not).
func validateKubeletServing(req *x509.CertificateRequest, usages []certv1.KeyUsage) error {
	switch {
	case !isNodesOrg(req):
		return errNotNodesOrg
	case len(req.DNSNames) == 0 && len(req.IPAddresses) == 0:
		return errNeedDNSOrIP
	case len(req.EmailAddresses) > 0:
		return errEmailNoAllow
	case len(req.URIs) > 0:
		return errURINotAllow
	}
	if u := setOf(usages...); !maps.Equal(u, kubeletServingUsages) && !maps.Equal(u, kubeletServingUsagesNoRSA) {
		return fmt.Errorf("usages did not match %v", kubeletServingUsages.names())
	}
	if !strings.HasPrefix(req.Subject.CommonName, nodeUserPrefix) {
		return errNotNodeName
	}
	return nil
}

// validateAPIServerClient checks a client certificate request for the API
// server: usage client auth, besides which only digital signature and key
// encipherment. Its subject is the user's to choose: approving it is
// granting that identity.
func validateAPIServerClient(_ *x509.CertificateRequest, usages []certv1.KeyUsage) error {
	clientAuth := false
	for _, u := range usages {
		switch u {
		case certv1.UsageDigitalSignature, certv1.UsageKeyEncipherment:
		case certv1.UsageClientAuth:
			clientAuth = true
		default:
			return fmt.Errorf("invalid usage for client certificate: %s", u)
		}
	}
	if !clientAuth {
		return fmt.Errorf("missing required usage for client certificate: %s", certv1.UsageClientAuth)
	}
	return nil
}

// signerChecks are the signers csrsigning issues for, each with its check.
var signerChecks = map[string]func(*x509.CertificateRequest, []certv1.KeyUsage) error{
	certv1.KubeAPIServerClientKubeletSignerName: validateKubeletClient,
	certv1.KubeletServingSignerName:             validateKubeletServing,
	certv1.KubeAPIServerClientSignerName:        validateAPIServerClient,
}
