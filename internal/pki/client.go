package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// IssueClient returns a client certificate signed by the cluster CA for
// commonName and orgs, stored as dir/base.crt and dir/base.key (key mode
// 0600; dir is created with mode 0700). An existing pair there is reused when
// it is still valid for the same subject and CA, so callers may call it on
// every start.
func (b *Bundle) IssueClient(commonName string, orgs []string, dir, base string) (certFile, keyFile string, err error) {
	if b == nil || b.ca == nil {
		return "", "", errors.New("pki: bundle has no CA key; obtain it from Ensure")
	}
	if commonName == "" || base == "" || dir == "" {
		return "", "", errors.New("pki: IssueClient needs a common name, a directory and a base name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("pki: %w", err)
	}
	certFile = filepath.Join(dir, base+".crt")
	keyFile = filepath.Join(dir, base+".key")
	spec := leafSpec{
		commonName: commonName,
		orgs:       orgs,
		usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if _, err := ensureLeaf(b.ca, certFile, keyFile, spec, time.Now()); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}
