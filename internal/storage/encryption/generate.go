package encryption

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"
)

// ErrNotRotatable: the configuration is not one that rotation can change
// safely (see WithNewKey).
var ErrNotRotatable = errors.New("configuration cannot be rotated automatically")

// Generate returns a configuration that encrypts Secrets with provider
// (Secretbox or AESCBC) under one fresh 32-byte key, and still reads
// Secrets stored before encryption was on (identity second), as k3s's
// generated configuration does.
func Generate(provider string, now time.Time) (*Configuration, error) {
	k, err := newKey(provider, now, nil)
	if err != nil {
		return nil, err
	}
	c := &Configuration{Kind: Kind, APIVersion: APIVersion, Resources: []ResourceConfiguration{{
		Resources: []string{"secrets"},
		Providers: []ProviderConfiguration{providerOf(provider, []Key{k}), {Identity: &struct{}{}}},
	}}}
	return c, nil
}

// GenerateProviders are the providers Generate takes.
var GenerateProviders = []string{Secretbox, AESCBC}

func providerOf(provider string, keys []Key) ProviderConfiguration {
	kc := &KeysConfiguration{Keys: keys}
	if provider == AESCBC {
		return ProviderConfiguration{AESCBC: kc}
	}
	return ProviderConfiguration{Secretbox: kc}
}

// newKey makes a key named for the time, unique among taken.
func newKey(provider string, now time.Time, taken []Key) (Key, error) {
	if provider != Secretbox && provider != AESCBC {
		return Key{}, fmt.Errorf("provider %q: want one of %v", provider, GenerateProviders)
	}
	secret := make([]byte, 32)
	if _, err := io.ReadFull(defaultRand, secret); err != nil {
		return Key{}, fmt.Errorf("random key: %w", err)
	}
	base := "key-" + now.UTC().Format("20060102T150405Z")
	name := base
	for i := 2; hasKey(taken, name); i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	return Key{Name: name, Secret: base64.StdEncoding.EncodeToString(secret)}, nil
}

func hasKey(keys []Key, name string) bool {
	for _, k := range keys {
		if k.Name == name {
			return true
		}
	}
	return false
}

// rotatable returns the keys of the one provider rotation may change: c
// must have exactly one rule, covering "secrets" alone, whose first
// provider encrypts with aescbc or secretbox. That is the shape Generate
// makes; rotation refuses others, because it rewrites Secrets only and
// could not know which other objects still need an old key.
func (c *Configuration) rotatable() (string, *KeysConfiguration, error) {
	if len(c.Resources) != 1 || len(c.Resources[0].Resources) != 1 || c.Resources[0].Resources[0] != "secrets" {
		return "", nil, fmt.Errorf("%w: it must have one rule, for secrets alone", ErrNotRotatable)
	}
	name, keys := c.Resources[0].Providers[0].name()
	if name != AESCBC && name != Secretbox {
		return "", nil, fmt.Errorf("%w: its first provider is %s, not aescbc or secretbox", ErrNotRotatable, name)
	}
	return name, keys, nil
}

// WithNewKey returns a copy of c with a fresh key first in its first
// provider (which then writes), and the key's name. c is not changed.
func (c *Configuration) WithNewKey(now time.Time) (*Configuration, string, error) {
	out := c.deepCopy()
	provider, keys, err := out.rotatable()
	if err != nil {
		return nil, "", err
	}
	k, err := newKey(provider, now, keys.Keys)
	if err != nil {
		return nil, "", err
	}
	keys.Keys = append([]Key{k}, keys.Keys...)
	return out, k.Name, nil
}

// WithActiveKeyOnly returns a copy of c whose first provider keeps only
// its first key, and the names of the keys it dropped. Other providers
// (identity, for values stored before encryption was on) stay.
func (c *Configuration) WithActiveKeyOnly() (*Configuration, []string, error) {
	out := c.deepCopy()
	_, keys, err := out.rotatable()
	if err != nil {
		return nil, nil, err
	}
	var dropped []string
	for _, k := range keys.Keys[1:] {
		dropped = append(dropped, k.Name)
	}
	keys.Keys = keys.Keys[:1]
	return out, dropped, nil
}

func (c *Configuration) deepCopy() *Configuration {
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("encryption configuration does not marshal: %v", err))
	}
	out := &Configuration{}
	if err := json.Unmarshal(b, out); err != nil {
		panic(fmt.Sprintf("encryption configuration does not unmarshal: %v", err))
	}
	return out
}

// Marshal returns c as YAML.
func (c *Configuration) Marshal() ([]byte, error) { return yaml.Marshal(c) }

// WriteFile writes c to path, readable by its owner alone (0600, in a
// directory made 0700), replacing any file there atomically: a reader
// sees the old configuration or the new one, never part of one.
func WriteFile(path string, c *Configuration) error {
	data, err := c.Marshal()
	if err != nil {
		return fmt.Errorf("encryption configuration: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("encryption configuration: %w", err)
	}
	f, err := os.CreateTemp(dir, ".encryption-config-*")
	if err != nil {
		return fmt.Errorf("encryption configuration: %w", err)
	}
	defer os.Remove(f.Name()) // after a successful rename, a no-op
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("encryption configuration: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("encryption configuration: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("encryption configuration: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("encryption configuration: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("encryption configuration: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
