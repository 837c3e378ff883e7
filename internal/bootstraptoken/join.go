package bootstraptoken

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// joinPrefix starts a join string: k3s's "K10" (format 1, hash 0: a
// sha256), kept so that the string looks like what k3s users know.
const joinPrefix = "K10"

// hashPrefix starts a CA hash as kubeadm writes it.
const hashPrefix = "sha256:"

// CAHash is the hash of a CA certificate as kubeadm's
// --discovery-token-ca-cert-hash: "sha256:" and the hex sha256 of the
// certificate's DER SubjectPublicKeyInfo. It names the CA's key, not the
// certificate: a CA cross-signed by another (during a CA rotation) has
// the same hash as the CA itself.
func CAHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hashPrefix + hex.EncodeToString(sum[:])
}

// ParseCAHash checks a CA hash, "sha256:<64 hex digits>" or the hex
// digits alone, and returns it as CAHash writes it (prefixed, lowercase).
func ParseCAHash(s string) (string, error) {
	h, ok := fromHex(strings.TrimPrefix(s, hashPrefix))
	if !ok {
		return "", fmt.Errorf("CA hash %q: want sha256:<64 hex digits>", s)
	}
	return h, nil
}

// fromHex checks that h is the 64 hex digits of a sha256 and returns the
// CA hash they make.
func fromHex(h string) (string, bool) {
	h = strings.ToLower(h)
	if _, err := hex.DecodeString(h); err != nil || len(h) != 2*sha256.Size {
		return "", false
	}
	return hashPrefix + h, true
}

// Join is the join string of a token for the CA whose CAHash is caHash:
// "K10<hex>::<id>.<secret>".
//
// Which CA: the one that signs the API server's serving certificate.
// While a CA rotation overlaps two CAs and the trust bundle holds both,
// that is the new one; VerifyCA accepts it in the served chain, where the
// new CA comes cross-signed by the old with the same key, and in the
// bundle.
func Join(caHash string, t Token) string {
	return joinPrefix + strings.TrimPrefix(caHash, hashPrefix) + "::" + t.String()
}

// ErrMalformedJoin is wrapped by every error of ParseJoin.
var ErrMalformedJoin = errors.New("malformed join token")

// ParseJoin parses a join string and returns the CA hash (as CAHash
// writes it) and the token. Its errors name what is wrong without
// repeating the token's secret.
func ParseJoin(s string) (caHash string, t Token, err error) {
	const want = "want K10<sha256 of the CA>::<id>.<secret>, as 'skiff token create' prints it"
	rest, ok := strings.CutPrefix(s, joinPrefix)
	if !ok {
		return "", Token{}, fmt.Errorf("%w: it does not start with %s; %s", ErrMalformedJoin, joinPrefix, want)
	}
	h, tok, ok := strings.Cut(rest, "::")
	if !ok {
		return "", Token{}, fmt.Errorf("%w: no '::' between CA hash and token; %s", ErrMalformedJoin, want)
	}
	if caHash, ok = fromHex(h); !ok {
		return "", Token{}, fmt.Errorf("%w: the CA hash is not 64 hex digits; %s", ErrMalformedJoin, want)
	}
	if t, err = ParseToken(tok); err != nil {
		return "", Token{}, fmt.Errorf("%w: the token after '::' is not [a-z0-9]{6}.[a-z0-9]{16}; %s", ErrMalformedJoin, want)
	}
	return caHash, t, nil
}

// ErrCAMismatch is wrapped by VerifyCA's error when no certificate
// matches.
var ErrCAMismatch = errors.New("the server's CA does not match the join token's hash")

// VerifyCA checks that one of certs has the CA hash hash (as CAHash or
// ParseCAHash gives it, or bare hex). certs are what the server presents:
// its served chain, or the CA bundle of kube-public/cluster-info. Any
// match will do: during a CA rotation the chain holds the new CA
// cross-signed by the old, and the bundle both CAs, so a join string made
// before or after the rotation started is accepted.
func VerifyCA(hash string, certs []*x509.Certificate) error {
	want, err := ParseCAHash(hash)
	if err != nil {
		return err
	}
	for _, c := range certs {
		if CAHash(c) == want {
			return nil
		}
	}
	return fmt.Errorf("%w (%s)", ErrCAMismatch, want)
}

// serverMarker stands where a join string has a bootstrap token when the
// string is a server's: "K10<hash>::server:<secret>", as k3s writes its
// server tokens.
const serverMarker = "server:"

// ServerJoin is the join string of a server secret (`skiff server
// --server`) for the CA whose CAHash is caHash.
func ServerJoin(caHash, secret string) string {
	return joinPrefix + strings.TrimPrefix(caHash, hashPrefix) + "::" + serverMarker + secret
}

// ParseServerJoin parses a server join string and returns the CA hash (as
// CAHash writes it) and the secret. Its errors never repeat the secret.
func ParseServerJoin(s string) (caHash, secret string, err error) {
	const want = "want K10<sha256 of the CA>::server:<secret>, as the first server writes it to <data-dir>/token"
	rest, ok := strings.CutPrefix(s, joinPrefix)
	if !ok {
		return "", "", fmt.Errorf("%w: it does not start with %s; %s", ErrMalformedJoin, joinPrefix, want)
	}
	h, tok, ok := strings.Cut(rest, "::")
	if !ok {
		return "", "", fmt.Errorf("%w: no '::' between CA hash and secret; %s", ErrMalformedJoin, want)
	}
	if caHash, ok = fromHex(h); !ok {
		return "", "", fmt.Errorf("%w: the CA hash is not 64 hex digits; %s", ErrMalformedJoin, want)
	}
	if secret, ok = strings.CutPrefix(tok, serverMarker); !ok {
		return "", "", fmt.Errorf("%w: an agent's join token, not a server's (no 'server:' after '::'); %s", ErrMalformedJoin, want)
	}
	if len(secret) < 16 {
		return "", "", fmt.Errorf("%w: the secret is shorter than 16 characters; %s", ErrMalformedJoin, want)
	}
	return caHash, secret, nil
}
