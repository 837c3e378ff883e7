package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Names of a node's client identity, as the Node authorizer and
// NodeRestriction expect them upstream: user "system:node:<name>" in group
// "system:nodes".
const (
	NodeUserPrefix    = "system:node:"
	NodesOrganization = "system:nodes"
)

// IssueClient returns a client certificate signed by the cluster CA for
// commonName and orgs, stored as dir/base.crt and dir/base.key (key mode
// 0600; dir is created with mode 0700). An existing pair there is reused when
// it is still valid for the same subject and CA, so callers may call it on
// every start. The pair is one of the bundle's leaves from then on:
// Bundle.Renew renews it. A kubelet's identity is
// IssueClient(NodeUserPrefix+nodeName, []string{NodesOrganization}, ...).
func (b *Bundle) IssueClient(commonName string, orgs []string, dir, base string) (certFile, keyFile string, err error) {
	return b.issueLeaf("IssueClient", dir, base, leafSpec{
		commonName: commonName,
		orgs:       orgs,
		usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// IssueServing returns a serving certificate signed by the cluster CA for
// commonName, valid for the names in sans (entries that parse as IP
// addresses become IP SANs, the others DNS names; empty ones are
// ignored), stored and reused as IssueClient does. A kubelet's serving
// certificate is IssueServing(nodeName, []string{nodeName, nodeIP}, ...);
// the API server does not verify it (see KubeletClientCommonName), but
// other clients of the kubelet may, with Bundle.TrustPool.
func (b *Bundle) IssueServing(commonName string, sans []string, dir, base string) (certFile, keyFile string, err error) {
	spec := leafSpec{commonName: commonName, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, s := range sans {
		s = strings.TrimSpace(s)
		switch ip := net.ParseIP(s); {
		case s == "":
		case ip != nil:
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			spec.ips = append(spec.ips, ip)
		default:
			spec.dnsNames = append(spec.dnsNames, strings.ToLower(s))
		}
	}
	return b.issueLeaf("IssueServing", dir, base, spec)
}

// issueLeaf writes (or keeps) dir/base.crt and dir/base.key for spec.
func (b *Bundle) issueLeaf(op, dir, base string, spec leafSpec) (certFile, keyFile string, err error) {
	if b == nil || b.ca == nil {
		return "", "", fmt.Errorf("pki: %s: bundle has no CA key; obtain it from Ensure", op)
	}
	if spec.commonName == "" || base == "" || dir == "" {
		return "", "", errors.New("pki: " + op + " needs a common name, a directory and a base name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("pki: %w", err)
	}
	certFile = filepath.Join(dir, base+".crt")
	keyFile = filepath.Join(dir, base+".key")
	if _, err := b.keep(b.ca, certFile, keyFile, spec, time.Now()); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}
