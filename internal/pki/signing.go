package pki

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
)

// SigningCA reads the cluster CA that signs leaves now from dir (a
// Config.Dir that Ensure keeps): the first certificate of ca.crt and the
// key in ca.key. It is for signers outside the Bundle, such as the CSR
// signing controller, which read it per certificate as upstream's
// kube-controller-manager reloads --cluster-signing-cert-file: during a
// rotation's overlap ca.crt holds the new CA first and ca.key is its key
// (rotate.go), so the new CA signs from the moment RotateCA returns. In
// the instant between RotateCA writing ca.crt and renaming the new key
// into place the two do not match and SigningCA fails; the caller tries
// again.
func SigningCA(dir string) (*x509.Certificate, crypto.Signer, error) {
	certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	p, err := readPair(certFile, keyFile)
	if errors.Is(err, errMissing) {
		return nil, nil, fmt.Errorf("pki: no cluster CA in %s", dir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("pki: cluster CA: %w", err)
	}
	if !p.cert.IsCA {
		return nil, nil, fmt.Errorf("pki: %s is not a CA certificate", certFile)
	}
	return p.cert, p.key, nil
}
