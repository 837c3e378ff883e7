package pki

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
)

// ensureServiceAccountKey loads the key that signs service account tokens
// from path, or creates it (ECDSA P-256) when missing. Tokens outlive a
// restart only because this key does.
func ensureServiceAccountKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k, err := newKey()
		if err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
		pemKey, err := encodeKey(k)
		if err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
		if err := writeFileAtomic(path, pemKey, 0o600); err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pki: service account key: %w", err)
	}
	s, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("pki: service account key %s: %w", path, err)
	}
	k, ok := s.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("pki: service account key %s: want an ECDSA key, have %T", path, s)
	}
	return k, nil
}
