package serviceaccount

import (
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
)

// OpenIDMetadata returns the discovery document and the key set (RFC 7517)
// that let a relying party verify this issuer's tokens without asking the
// API server: the issuer, where its keys are (jwksURI), and each key
// that verifies tokens.
func OpenIDMetadata(issuer, jwksURI string, keys ...*ecdsa.PublicKey) (discovery, keySet []byte, err error) {
	type jwk struct {
		Use string `json:"use"`
		Kty string `json:"kty"`
		Kid string `json:"kid"`
		Crv string `json:"crv"`
		Alg string `json:"alg"`
		X   string `json:"x"`
		Y   string `json:"y"`
	}
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, k := range keys {
		kid, err := keyID(k)
		if err != nil {
			return nil, nil, err
		}
		pt, err := k.ECDH() // 0x04 || X || Y, each the curve's size
		if err != nil {
			return nil, nil, err
		}
		b := pt.Bytes()
		if len(b) != 65 || b[0] != 4 {
			return nil, nil, fmt.Errorf("service account key: not a P-256 key")
		}
		set.Keys = append(set.Keys, jwk{Use: "sig", Kty: "EC", Kid: kid, Crv: "P-256", Alg: "ES256", X: b64(b[1:33]), Y: b64(b[33:])})
	}
	if keySet, err = json.Marshal(set); err != nil {
		return nil, nil, err
	}
	discovery, err = json.Marshal(struct {
		Issuer        string   `json:"issuer"`
		JWKSURI       string   `json:"jwks_uri"`
		ResponseTypes []string `json:"response_types_supported"`
		SubjectTypes  []string `json:"subject_types_supported"`
		SigningAlgs   []string `json:"id_token_signing_alg_values_supported"`
	}{issuer, jwksURI, []string{"id_token"}, []string{"public"}, []string{"ES256"}})
	return discovery, keySet, err
}
