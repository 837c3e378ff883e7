package bootstraptoken

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
)

// Lengths of a token's parts.
const (
	IDLength     = 6
	SecretLength = 16
)

// Token is a bootstrap token: ID is public (it names the Secret and the
// user), Secret is the password.
type Token struct {
	ID     string
	Secret string
}

// String is the token as a bearer credential: "<id>.<secret>".
func (t Token) String() string { return t.ID + "." + t.Secret }

// ErrMalformedToken is returned by ParseToken for a string that is not
// of the form [a-z0-9]{6}.[a-z0-9]{16}. Its message never repeats the
// string: that may be a mistyped secret.
var ErrMalformedToken = errors.New("bootstrap token: want the form [a-z0-9]{6}.[a-z0-9]{16}")

// ParseToken parses "<id>.<secret>".
func ParseToken(s string) (Token, error) {
	id, secret, ok := strings.Cut(s, ".")
	if !ok || !ValidID(id) || !valid(secret, SecretLength) {
		return Token{}, ErrMalformedToken
	}
	return Token{ID: id, Secret: secret}, nil
}

// ValidID says whether id is a token id: [a-z0-9]{6}.
func ValidID(id string) bool { return valid(id, IDLength) }

func valid(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

const tokenChars = "0123456789abcdefghijklmnopqrstuvwxyz"

// Generate returns a new random token from crypto/rand: about 31 bits of
// id and 83 of secret, as upstream's.
func Generate() (Token, error) {
	s, err := randomString(IDLength + SecretLength)
	if err != nil {
		return Token{}, fmt.Errorf("bootstrap token: %w", err)
	}
	return Token{ID: s[:IDLength], Secret: s[IDLength:]}, nil
}

// randomString draws n characters of tokenChars uniformly: bytes of 252
// and above are dropped, so that each of the 36 characters is as likely
// (252 = 7*36).
func randomString(n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if b < 252 && len(out) < n {
				out = append(out, tokenChars[int(b)%len(tokenChars)])
			}
		}
	}
	return string(out), nil
}
