package server

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/storage"
	"github.com/skiff-io/skiff/internal/storage/encryption"
)

// Encryption at rest (issue 13). The configuration comes from
// --encryption-provider-config (upstream's file), or, with
// --secrets-encryption, from a file skiff generates on first start in the
// data dir, as k3s does. Storage gets a transformer per resource that
// follows the configuration in force, so that replacing it (an automatic
// reload, a rotation) needs no restart.
//
// `skiff secrets-encrypt status|rotate-keys` talks to the running server
// through the two endpoints below, on the API port, authenticated like
// any request and allowed to system:masters only (k3s serves
// /v1-k3s/encrypt/* the same way). Rotation is done by the server rather
// than by the command editing the file, because only the server can do
// it without a window: it puts the new key in force the moment the file
// is written, rewrites the Secrets through its own API, checks in etcd
// that every one is under the new key, and only then drops the old key.
const (
	encryptStatusPath = "/v1-skiff/encrypt/status"
	encryptRotatePath = "/v1-skiff/encrypt/rotate-keys"
)

// reloadInterval is how often an automatically reloaded configuration
// file is read for changes (upstream polls too).
const reloadInterval = 10 * time.Second

// secretsPrefix is where Secrets live in etcd.
const secretsPrefix = "/registry/secrets/"

var secretsGR = schema.GroupResource{Resource: "secrets"}

// EncryptionStatus is what the endpoints answer, and what
// `skiff secrets-encrypt status -o json` prints.
type EncryptionStatus struct {
	// Enabled: Secrets are written encrypted.
	Enabled bool `json:"enabled"`
	// ConfigFile is the configuration in force ("" when there is none);
	// Generated says skiff made it (--secrets-encryption) and so may
	// rotate its keys; AutomaticReload that changes to it are picked up.
	ConfigFile      string `json:"configFile,omitempty"`
	Generated       bool   `json:"generated"`
	AutomaticReload bool   `json:"automaticReload"`
	// ActiveKey writes Secrets ("secretbox:key-20250101T000000Z", or
	// "identity"); Keys read them, the active one first.
	ActiveKey string   `json:"activeKey"`
	Keys      []string `json:"keys"`
	// Secrets is how many are stored; SecretsByKey how many under each
	// key; AllUnderActiveKey whether every one is under ActiveKey.
	Secrets           int            `json:"secrets"`
	SecretsByKey      map[string]int `json:"secretsByKey"`
	AllUnderActiveKey bool           `json:"allUnderActiveKey"`

	// After a rotation: the key added, how many Secrets were rewritten
	// and the keys dropped.
	NewKey      string   `json:"newKey,omitempty"`
	Rewritten   int      `json:"rewritten,omitempty"`
	DroppedKeys []string `json:"droppedKeys,omitempty"`
}

// secretsEncryption runs encryption at rest for the server.
type secretsEncryption struct {
	path      string
	generated bool
	reload    bool
	// decryptOnly: the generated file, with --secrets-encryption off now;
	// identity goes first.
	decryptOnly bool
	dyn         *encryption.Dynamic // nil: no configuration, values stored as encoded
	lg          *slog.Logger

	mu     sync.Mutex // serializes reloads, rotations; guards what follows
	hash   [32]byte   // of the file content in force
	etcd   *clientv3.Client
	client kubernetes.Interface
}

func generatedEncryptionConfig(dataDir string) string {
	return filepath.Join(dataDir, "cred", "encryption-config.yaml")
}

// newSecretsEncryption loads (or first generates) the configuration.
// With neither flag but a generated file from an earlier start, Secrets
// are written plain from now on and the ones encrypted before still read
// (identity goes first, upstream's way of decrypting).
func newSecretsEncryption(cfg Config, lg *slog.Logger) (*secretsEncryption, error) {
	e := &secretsEncryption{lg: lg, reload: cfg.EncryptionProviderConfigAutomaticReload}
	generated := generatedEncryptionConfig(cfg.DataDir)
	_, statErr := os.Stat(generated)
	switch {
	case cfg.EncryptionProviderConfig != "" && cfg.SecretsEncryption:
		return nil, errors.New("--encryption-provider-config and --secrets-encryption exclude each other: the first brings its own configuration, the second generates one")
	case cfg.EncryptionProviderConfig != "":
		e.path = cfg.EncryptionProviderConfig
	case cfg.SecretsEncryption:
		if !slices.Contains(encryption.GenerateProviders, cfg.SecretsEncryptionProvider) {
			return nil, fmt.Errorf("--secrets-encryption-provider %q: want one of %v", cfg.SecretsEncryptionProvider, encryption.GenerateProviders)
		}
		e.path, e.generated, e.reload = generated, true, true
		if errors.Is(statErr, fs.ErrNotExist) {
			c, err := encryption.Generate(cfg.SecretsEncryptionProvider, time.Now())
			if err != nil {
				return nil, err
			}
			if err := encryption.WriteFile(generated, c); err != nil {
				return nil, err
			}
			lg.Info("secrets encryption key generated", "config", generated, "provider", cfg.SecretsEncryptionProvider)
		}
	case statErr == nil:
		e.path, e.decryptOnly = generated, true
	default:
		if cfg.EncryptionProviderConfigAutomaticReload {
			return nil, errors.New("--encryption-provider-config-automatic-reload needs --encryption-provider-config")
		}
		return e, nil
	}
	set, hash, err := e.load()
	if err != nil {
		return nil, err
	}
	e.dyn, e.hash = encryption.NewDynamic(set), hash
	if e.decryptOnly {
		lg.Warn("--secrets-encryption is off, but Secrets were encrypted before: new writes are plain, old values still read", "config", generated)
	}
	lg.Info("encryption at rest", "config", e.path, "secrets", set.For(secretsGR).Active(), "automatic-reload", e.reload)
	return e, nil
}

// load reads and builds the configuration file. The generated file, when
// --secrets-encryption is off, gets identity first.
func (e *secretsEncryption) load() (*encryption.Set, [32]byte, error) {
	data, err := os.ReadFile(e.path)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("encryption configuration: %w", err)
	}
	hash := sha256.Sum256(data)
	c, err := encryption.Parse(data)
	if err != nil {
		return nil, hash, fmt.Errorf("encryption configuration %s: %w", e.path, err)
	}
	if e.decryptOnly {
		for i, rc := range c.Resources {
			providers := []encryption.ProviderConfiguration{{Identity: &struct{}{}}}
			for _, p := range rc.Providers {
				if p.Identity == nil {
					providers = append(providers, p)
				}
			}
			c.Resources[i].Providers = providers
		}
	}
	set, err := encryption.NewSet(c)
	if err != nil {
		return nil, hash, fmt.Errorf("encryption configuration %s: %w", e.path, err)
	}
	return set, hash, nil
}

// transformer returns the transformer of the resource stored under
// prefix ("/registry/secrets/", "/registry/apps/deployments/"), or nil
// when encryption at rest is off.
func (e *secretsEncryption) transformer(prefix string) storage.Transformer {
	if e.dyn == nil {
		return nil
	}
	rest := strings.Trim(strings.TrimPrefix(prefix, "/registry/"), "/")
	gr := schema.GroupResource{Resource: rest}
	if group, resource, ok := strings.Cut(rest, "/"); ok {
		gr = schema.GroupResource{Group: group, Resource: resource}
	}
	return e.dyn.For(gr)
}

// start gives the endpoints their clients and, with automatic reload,
// watches the file until ctx ends.
func (e *secretsEncryption) start(ctx context.Context, wg *sync.WaitGroup, etcd *clientv3.Client, loopback *rest.Config) error {
	client, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return fmt.Errorf("encryption: %w", err)
	}
	e.mu.Lock()
	e.etcd, e.client = etcd, client
	e.mu.Unlock()
	if e.dyn == nil || !e.reload {
		return nil
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(reloadInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				e.reloadIfChanged()
			}
		}
	}()
	return nil
}

// reloadIfChanged puts the file's configuration in force if its content
// changed. A configuration that does not load leaves the one in force
// (upstream does the same), and is logged: the errors name fields, never
// secrets.
func (e *secretsEncryption) reloadIfChanged() {
	e.mu.Lock()
	defer e.mu.Unlock()
	set, hash, err := e.load()
	if hash == e.hash {
		return
	}
	if err != nil {
		e.lg.Error("encryption configuration not reloaded", "config", e.path, "err", err)
		e.hash = hash // do not log it again until it changes
		return
	}
	e.dyn.Store(set)
	e.hash = hash
	e.lg.Info("encryption configuration reloaded", "config", e.path, "secrets", set.For(secretsGR).Active())
}

// handler serves the /v1-skiff/encrypt/ endpoints and hands every other
// request to next.
func (e *secretsEncryption) handler(next http.Handler, authn apiserver.Authenticator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1-skiff/encrypt/") {
			next.ServeHTTP(w, r)
			return
		}
		if !mastersOnly(authn, w, r, "manage encryption at rest") {
			return
		}
		var (
			st  *EncryptionStatus
			err error
		)
		switch {
		case r.URL.Path == encryptStatusPath && r.Method == http.MethodGet:
			st, err = e.status(r.Context())
		case r.URL.Path == encryptRotatePath && r.Method == http.MethodPost:
			st, err = e.rotate(r.Context())
		case r.URL.Path == encryptStatusPath || r.URL.Path == encryptRotatePath:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		default:
			http.NotFound(w, r)
			return
		}
		if err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, encryption.ErrNotRotatable) || errors.Is(err, errEncryptionOff) {
				code = http.StatusConflict
			}
			http.Error(w, err.Error(), code)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
}

// mastersOnly authenticates r and lets system:masters through; it
// answers anyone else (401, 403) and reports false. The /v1-skiff/
// endpoints are the server's own operations, outside RBAC, as k3s's
// /v1-k3s/ ones are.
func mastersOnly(authn apiserver.Authenticator, w http.ResponseWriter, r *http.Request, what string) bool {
	u, ok, err := authn.AuthenticateRequest(r)
	if err != nil || !ok {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return false
	}
	if !slices.Contains(u.Groups, "system:masters") {
		http.Error(w, fmt.Sprintf("user %q may not %s: it takes system:masters", u.Name, what), http.StatusForbidden)
		return false
	}
	return true
}

var errEncryptionOff = errors.New("encryption at rest is off: start the server with --secrets-encryption")

// status describes the configuration in force and counts the Secrets in
// etcd by the key they are stored under.
func (e *secretsEncryption) status(ctx context.Context) (*EncryptionStatus, error) {
	e.mu.Lock()
	etcd := e.etcd
	e.mu.Unlock()
	if etcd == nil {
		return nil, errors.New("the server is still starting")
	}
	return e.describe(ctx, etcd)
}

func (e *secretsEncryption) describe(ctx context.Context, etcd *clientv3.Client) (*EncryptionStatus, error) {
	var set *encryption.Set // nil when off: its For gives identity
	if e.dyn != nil {
		set = e.dyn.Load()
	}
	list := set.For(secretsGR)
	st := &EncryptionStatus{
		Enabled:    list.Active() != encryption.Identity,
		ConfigFile: e.path, Generated: e.generated || e.decryptOnly, AutomaticReload: e.reload && e.dyn != nil,
		ActiveKey: list.Active(), Keys: list.Keys(), SecretsByKey: map[string]int{},
	}
	if e.dyn == nil {
		st.Keys = nil
	}
	err := scanPrefix(ctx, etcd, secretsPrefix, func(_ string, value []byte) {
		st.Secrets++
		st.SecretsByKey[list.WrittenWith(value)]++
	})
	if err != nil {
		return nil, fmt.Errorf("encryption status: %w", err)
	}
	st.AllUnderActiveKey = st.SecretsByKey[st.ActiveKey] == st.Secrets
	return st, nil
}

// scanPrefix calls fn for every key under prefix, at one revision, a page
// at a time. It reads etcd directly because what it reports — the key a
// value is stored under — is below the API (upstream's docs check it with
// etcdctl).
func scanPrefix(ctx context.Context, etcd *clientv3.Client, prefix string, fn func(key string, value []byte)) error {
	end := clientv3.GetPrefixRangeEnd(prefix)
	from, rev := prefix, int64(0)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(500)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := etcd.Get(ctx, from, opts...)
		if err != nil {
			return err
		}
		rev = resp.Header.Revision
		for _, kv := range resp.Kvs {
			fn(string(kv.Key), kv.Value)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// rotate adds a fresh key first and puts it in force, rewrites every
// Secret not under it through the API (a no-op update: stale values are
// written again under the key in force), checks etcd, and drops the old
// keys once no Secret is under them. It fails, keeping both keys, if
// Secrets remain under an old key after a few passes.
func (e *secretsEncryption) rotate(ctx context.Context) (*EncryptionStatus, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dyn == nil || e.decryptOnly || !e.generated {
		if e.dyn != nil && !e.decryptOnly {
			return nil, fmt.Errorf("%w: %s is not the configuration --secrets-encryption generates; rotate its keys by editing it", encryption.ErrNotRotatable, e.path)
		}
		return nil, errEncryptionOff
	}
	if e.client == nil {
		return nil, errors.New("the server is still starting")
	}
	current := e.dyn.Load().Config()
	next, name, err := current.WithNewKey(time.Now())
	if err != nil {
		return nil, err
	}
	if err := e.put(next); err != nil {
		return nil, err
	}
	e.lg.Info("secrets encryption key added", "key", name)
	active := e.dyn.Load().For(secretsGR).Active()

	rewritten := 0
	for pass := 0; ; pass++ {
		var behind []string
		err := scanPrefix(ctx, e.etcd, secretsPrefix, func(key string, value []byte) {
			if e.dyn.Load().For(secretsGR).WrittenWith(value) != active {
				behind = append(behind, key)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("rotate: %w", err)
		}
		if len(behind) == 0 {
			break
		}
		if pass == 5 {
			return nil, fmt.Errorf("rotate: %d Secrets are still not under key %s after %d passes; both keys stay (run rotate-keys again)", len(behind), active, pass)
		}
		for _, key := range behind {
			n, err := e.rewrite(ctx, key)
			if err != nil {
				return nil, fmt.Errorf("rotate: %w", err)
			}
			rewritten += n
		}
	}

	only, dropped, err := next.WithActiveKeyOnly()
	if err != nil {
		return nil, err
	}
	if err := e.put(only); err != nil {
		return nil, err
	}
	e.lg.Info("secrets encryption keys rotated", "key", name, "rewritten", rewritten, "dropped", dropped)
	st, err := e.describe(ctx, e.etcd)
	if err != nil {
		return nil, err
	}
	st.NewKey, st.Rewritten, st.DroppedKeys = active, rewritten, dropped
	return st, nil
}

// put writes c to the file and puts it in force. e.mu is held.
func (e *secretsEncryption) put(c *encryption.Configuration) error {
	set, err := encryption.NewSet(c)
	if err != nil {
		return err
	}
	if err := encryption.WriteFile(e.path, c); err != nil {
		return err
	}
	data, err := os.ReadFile(e.path)
	if err != nil {
		return fmt.Errorf("encryption configuration: %w", err)
	}
	e.dyn.Store(set)
	e.hash = sha256.Sum256(data)
	return nil
}

// rewrite updates the Secret stored at key with itself, as
// `kubectl get secret -o json | kubectl replace -f -` does. A Secret
// deleted or changed meanwhile needs nothing: the next scan sees it. It
// returns how many it rewrote (0 or 1).
func (e *secretsEncryption) rewrite(ctx context.Context, key string) (int, error) {
	namespace, name, ok := strings.Cut(strings.TrimPrefix(key, secretsPrefix), "/")
	if !ok {
		return 0, nil
	}
	secrets := e.client.CoreV1().Secrets(namespace)
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("secret %s/%s: %w", namespace, name, err)
	}
	_, err = secrets.Update(ctx, s, metav1.UpdateOptions{FieldManager: "skiff-secrets-encrypt"})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("secret %s/%s: %w", namespace, name, err)
	}
	return 1, nil
}
