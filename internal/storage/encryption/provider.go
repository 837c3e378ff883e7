package encryption

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/nacl/secretbox"
)

// encPrefix starts every encrypted value; a value without it was stored
// by the identity provider (upstream's "k8s:enc:" marker).
const encPrefix = "k8s:enc:"

// errDecrypt is what a failed decryption says, whatever the cause (wrong
// key, bad padding, tampered value): the details would only help an
// attacker who can write to etcd.
var errDecrypt = errors.New("value does not decrypt")

// keyCipher encrypts and decrypts with one key. Values it writes are
// prefix + payload; open gets the payload.
type keyCipher struct {
	provider string // AESCBC, AESGCM, Secretbox or Identity
	name     string // the key's name; "" for identity
	prefix   []byte // "k8s:enc:<provider>:v1:<name>:"; empty for identity
	seal     func(rnd io.Reader, dst, plain []byte) ([]byte, error)
	open     func(payload []byte) ([]byte, error)
}

// id names the key in status output and errors: "secretbox:key1",
// "identity".
func (k *keyCipher) id() string {
	if k.provider == Identity {
		return Identity
	}
	return k.provider + ":" + k.name
}

// newKeyCipher builds the cipher of one configured key; the
// configuration has been validated.
func newKeyCipher(provider string, k Key) (*keyCipher, error) {
	secret, err := base64.StdEncoding.DecodeString(k.Secret)
	if err != nil {
		return nil, fmt.Errorf("%s key %q: secret is not base64", provider, k.Name)
	}
	kc := &keyCipher{provider: provider, name: k.Name, prefix: []byte(encPrefix + provider + ":v1:" + k.Name + ":")}
	switch provider {
	case AESCBC:
		block, err := aes.NewCipher(secret)
		if err != nil {
			return nil, fmt.Errorf("%s key %q: %w", provider, k.Name, err)
		}
		kc.seal, kc.open = cbcSeal(block), cbcOpen(block)
	case AESGCM:
		block, err := aes.NewCipher(secret)
		if err != nil {
			return nil, fmt.Errorf("%s key %q: %w", provider, k.Name, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%s key %q: %w", provider, k.Name, err)
		}
		kc.seal, kc.open = gcmSeal(aead), gcmOpen(aead)
	case Secretbox:
		if len(secret) != 32 {
			return nil, fmt.Errorf("%s key %q: secret is %d bytes, want 32", provider, k.Name, len(secret))
		}
		var key [32]byte
		copy(key[:], secret)
		kc.seal, kc.open = boxSeal(&key), boxOpen(&key)
	default:
		return nil, fmt.Errorf("unknown provider %q", provider)
	}
	return kc, nil
}

// identity stores values as they are. It refuses to read an encrypted
// value (as upstream's identity transformer does), so that a list with
// identity first still reaches the provider that can.
var identity = &keyCipher{
	provider: Identity,
	seal: func(_ io.Reader, dst, plain []byte) ([]byte, error) {
		return append(dst, plain...), nil
	},
	open: func(payload []byte) ([]byte, error) {
		if len(payload) >= len(encPrefix) && string(payload[:len(encPrefix)]) == encPrefix {
			return nil, errors.New("identity transformer tried to read encrypted data")
		}
		return payload, nil
	},
}

// aescbc: a random 16-byte IV, then AES-CBC of the value padded as PKCS#7
// (upstream's layout, so aescbc values are byte-compatible with it).
func cbcSeal(block cipher.Block) func(io.Reader, []byte, []byte) ([]byte, error) {
	return func(rnd io.Reader, dst, plain []byte) ([]byte, error) {
		bs := block.BlockSize()
		pad := bs - len(plain)%bs
		n := len(dst)
		out := append(dst, make([]byte, bs+len(plain)+pad)...)
		iv, body := out[n:n+bs], out[n+bs:]
		if _, err := io.ReadFull(rnd, iv); err != nil {
			return nil, fmt.Errorf("aescbc: random IV: %w", err)
		}
		copy(body, plain)
		for i := len(plain); i < len(body); i++ {
			body[i] = byte(pad)
		}
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(body, body)
		return out, nil
	}
}

func cbcOpen(block cipher.Block) func([]byte) ([]byte, error) {
	return func(payload []byte) ([]byte, error) {
		bs := block.BlockSize()
		if len(payload) < 2*bs || len(payload)%bs != 0 {
			return nil, errDecrypt
		}
		iv := payload[:bs]
		body := make([]byte, len(payload)-bs)
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(body, payload[bs:])
		pad := int(body[len(body)-1])
		if pad == 0 || pad > bs {
			return nil, errDecrypt
		}
		for _, b := range body[len(body)-pad:] {
			if int(b) != pad {
				return nil, errDecrypt
			}
		}
		return body[:len(body)-pad], nil
	}
}

// aesgcm: a random 12-byte nonce, then AES-GCM of the value. Upstream
// also authenticates the etcd key as additional data; skiff's storage
// codec does not hand the key down on every read (the watch cache decodes
// values alone), so skiff's aesgcm values carry none and are not
// byte-compatible with upstream's.
func gcmSeal(aead cipher.AEAD) func(io.Reader, []byte, []byte) ([]byte, error) {
	return func(rnd io.Reader, dst, plain []byte) ([]byte, error) {
		ns := aead.NonceSize()
		n := len(dst)
		dst = append(dst, make([]byte, ns)...)
		nonce := dst[n:]
		if _, err := io.ReadFull(rnd, nonce); err != nil {
			return nil, fmt.Errorf("aesgcm: random nonce: %w", err)
		}
		return aead.Seal(dst, nonce, plain, nil), nil
	}
}

func gcmOpen(aead cipher.AEAD) func([]byte) ([]byte, error) {
	return func(payload []byte) ([]byte, error) {
		ns := aead.NonceSize()
		if len(payload) < ns+aead.Overhead() {
			return nil, errDecrypt
		}
		out, err := aead.Open(nil, payload[:ns], payload[ns:], nil)
		if err != nil {
			return nil, errDecrypt
		}
		return out, nil
	}
}

// secretbox: a random 24-byte nonce, then NaCl secretbox (XSalsa20 and
// Poly1305) of the value: upstream's layout.
func boxSeal(key *[32]byte) func(io.Reader, []byte, []byte) ([]byte, error) {
	return func(rnd io.Reader, dst, plain []byte) ([]byte, error) {
		var nonce [24]byte
		if _, err := io.ReadFull(rnd, nonce[:]); err != nil {
			return nil, fmt.Errorf("secretbox: random nonce: %w", err)
		}
		dst = append(dst, nonce[:]...)
		return secretbox.Seal(dst, plain, &nonce, key), nil
	}
}

func boxOpen(key *[32]byte) func([]byte) ([]byte, error) {
	return func(payload []byte) ([]byte, error) {
		if len(payload) < 24+secretbox.Overhead {
			return nil, errDecrypt
		}
		var nonce [24]byte
		copy(nonce[:], payload)
		out, ok := secretbox.Open(nil, payload[24:], &nonce, key)
		if !ok {
			return nil, errDecrypt
		}
		return out, nil
	}
}

// defaultRand is where nonces and IVs come from; tests replace it per
// Set.
var defaultRand io.Reader = rand.Reader
