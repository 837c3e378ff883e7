package pki

import (
	"crypto"
	"crypto/x509"
	"errors"
)

// SigningCA is the cluster CA that signs leaves now, and its key: for
// signers outside the Bundle, such as the CSR signing controller, which
// ask for it per certificate so that after RotateCA the new CA signs, as
// it does the Bundle's own leaves.
func (b *Bundle) SigningCA() (*x509.Certificate, crypto.Signer, error) {
	if b == nil {
		return nil, nil, errors.New("pki: no bundle")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ca == nil {
		return nil, nil, errors.New("pki: the bundle has no cluster CA")
	}
	return b.ca.cert, b.ca.key, nil
}
