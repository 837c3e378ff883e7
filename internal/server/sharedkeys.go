package server

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/skiff-io/skiff/internal/pki"
)

// Servers sharing an external etcd (--etcd-servers) and a --token share
// the cluster's keys through etcd itself, as k3s does: the first server
// to start stores its sharedFiles there, sealed with a key derived from
// the token; every other server reads them before it makes its TLS
// material. The key lies outside /registry: the API never serves it.
const sharedKeysKey = "/skiff.io/bootstrap/shared-keys"

// pbkdf2Iterations makes a guess at the token cost about 0.2 s (OWASP's
// figure for PBKDF2-HMAC-SHA256): a weak token is still the weak point.
const pbkdf2Iterations = 600_000

// sealedKeys is the stored form: the salt of the key derivation, the
// AES-256-GCM nonce and the sealed JSON of the files.
type sealedKeys struct {
	Salt   []byte `json:"salt"`
	Nonce  []byte `json:"nonce"`
	Sealed []byte `json:"sealed"`
}

// errWrongToken is returned when the stored keys do not open with the
// token given.
var errWrongToken = errors.New("--token does not open the cluster's keys stored in etcd: it is not the token the first server of this etcd was given")

func tokenKey(token string, salt []byte) ([]byte, error) {
	return pbkdf2.Key(sha256.New, token, salt, pbkdf2Iterations, 32)
}

func sealFiles(token string, files map[string][]byte) ([]byte, error) {
	plain, err := json.Marshal(files)
	if err != nil {
		return nil, err
	}
	s := sealedKeys{Salt: make([]byte, 16)}
	if _, err := rand.Read(s.Salt); err != nil {
		return nil, err
	}
	key, err := tokenKey(token, s.Salt)
	if err != nil {
		return nil, err
	}
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	s.Nonce = make([]byte, gcm.NonceSize())
	if _, err := rand.Read(s.Nonce); err != nil {
		return nil, err
	}
	s.Sealed = gcm.Seal(nil, s.Nonce, plain, []byte(sharedKeysKey))
	return json.Marshal(s)
}

func openFiles(token string, data []byte) (map[string][]byte, error) {
	var s sealedKeys
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("the cluster's keys stored in etcd: %w", err)
	}
	key, err := tokenKey(token, s.Salt)
	if err != nil {
		return nil, err
	}
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(s.Nonce) != gcm.NonceSize() {
		return nil, errors.New("the cluster's keys stored in etcd: malformed")
	}
	plain, err := gcm.Open(nil, s.Nonce, s.Sealed, []byte(sharedKeysKey))
	if err != nil {
		return nil, errWrongToken
	}
	files := map[string][]byte{}
	if err := json.Unmarshal(plain, &files); err != nil {
		return nil, fmt.Errorf("the cluster's keys stored in etcd: %w", err)
	}
	return files, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// syncSharedKeys makes dataDir hold the cluster's shared keys from etcd
// and returns the TLS material ensure makes from them. The stored keys are
// written only where the data dir has no cluster CA yet (a server's first
// start): a server's own CA is never replaced behind its back, and one that
// differs from the stored one is reported. When etcd holds none yet, this
// server's (made by ensure) are stored, unless another server stored its
// own first: then those replace this server's and ensure runs again,
// reissuing the leaves under the shared CA. The token is checked against
// the stored keys at every start.
func syncSharedKeys(ctx context.Context, client *clientv3.Client, dataDir, token string, ensure func() (*pki.Bundle, error), lg *slog.Logger) (*pki.Bundle, error) {
	stored := func() (map[string][]byte, error) {
		resp, err := client.Get(ctx, sharedKeysKey)
		if err != nil {
			return nil, fmt.Errorf("reading the cluster's keys from etcd: %w", err)
		}
		if len(resp.Kvs) == 0 {
			return nil, nil
		}
		return openFiles(token, resp.Kvs[0].Value)
	}
	write := func(files map[string][]byte) error {
		for _, f := range sharedFiles {
			if data, ok := files[f]; ok {
				if err := pki.WriteSecretFile(filepath.Join(dataDir, f), data); err != nil {
					return err
				}
			}
		}
		return nil
	}
	files, err := stored()
	if err != nil {
		return nil, err
	}
	if files != nil {
		local, err := os.ReadFile(filepath.Join(dataDir, "tls", "ca.crt"))
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := write(files); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, err
		case !bytes.Equal(local, files["tls/ca.crt"]):
			lg.Warn("this server's cluster CA differs from the one the servers share through etcd; it keeps its own (remove <data-dir>/tls to take the shared one)")
		}
		return ensure()
	}
	bundle, err := ensure()
	if err != nil {
		return nil, err
	}
	mine := map[string][]byte{}
	for _, f := range sharedFiles {
		data, err := os.ReadFile(filepath.Join(dataDir, f))
		switch {
		case err == nil:
			mine[f] = data
		case !errors.Is(err, os.ErrNotExist):
			return nil, err
		}
	}
	sealed, err := sealFiles(token, mine)
	if err != nil {
		return nil, err
	}
	txn, err := client.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(sharedKeysKey), "=", 0)).
		Then(clientv3.OpPut(sharedKeysKey, string(sealed))).Commit()
	if err != nil {
		return nil, fmt.Errorf("storing the cluster's keys in etcd: %w", err)
	}
	if txn.Succeeded {
		lg.Info("stored the cluster's keys in etcd, sealed with the token")
		return bundle, nil
	}
	// Another server stored its keys first: take them.
	if files, err = stored(); err != nil {
		return nil, err
	}
	if err := write(files); err != nil {
		return nil, err
	}
	return ensure()
}
