package server

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-io/skiff/internal/storage/encryption"
)

func TestSecretsEncryptionSetup(t *testing.T) {
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	cfg := Defaults()
	cfg.DataDir = dir

	off, err := newSecretsEncryption(cfg, lg)
	if err != nil || off.transformer("/registry/secrets/") != nil {
		t.Fatalf("without flags: %v, transformer %v; want none", err, off.transformer("/registry/secrets/"))
	}

	for _, bad := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.SecretsEncryption, c.EncryptionProviderConfig = true, "/x" }, "exclude each other"},
		{func(c *Config) { c.SecretsEncryption, c.SecretsEncryptionProvider = true, "aesgcm" }, `--secrets-encryption-provider "aesgcm"`},
		{func(c *Config) { c.EncryptionProviderConfigAutomaticReload = true }, "needs --encryption-provider-config"},
		{func(c *Config) { c.EncryptionProviderConfig = filepath.Join(dir, "missing.yaml") }, "no such file"},
	} {
		c := cfg
		bad.change(&c)
		if _, err := newSecretsEncryption(c, lg); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("err = %v, want one containing %q", err, bad.want)
		}
	}

	// --secrets-encryption generates the file once; later starts keep it.
	on := cfg
	on.SecretsEncryption = true
	e, err := newSecretsEncryption(on, lg)
	if err != nil {
		t.Fatal(err)
	}
	active := e.dyn.Load().For(secretsGR).Active()
	if !strings.HasPrefix(active, "secretbox:key-") {
		t.Fatalf("generated active key %q", active)
	}
	if e.transformer("/registry/apps/deployments/") == nil {
		t.Fatal("no transformer for deployments: a reload that covers them would not reach their store")
	}
	again, err := newSecretsEncryption(on, lg)
	if err != nil || again.dyn.Load().For(secretsGR).Active() != active {
		t.Fatalf("second start: %v; active %q, want %q", err, again.dyn.Load().For(secretsGR).Active(), active)
	}

	// Turned off again: writes are plain, what was encrypted still reads.
	e2, err := newSecretsEncryption(cfg, lg)
	if err != nil {
		t.Fatal(err)
	}
	if got := e2.dyn.Load().For(secretsGR).Keys(); len(got) != 2 || got[0] != encryption.Identity || got[1] != active {
		t.Fatalf("with --secrets-encryption off, keys %v; want identity then %s", got, active)
	}
	if _, err := e2.rotate(t.Context()); err == nil || !strings.Contains(err.Error(), "encryption at rest is off") {
		t.Fatalf("rotate with encryption off: %v", err)
	}
}

func TestEncryptionConfigReload(t *testing.T) {
	var logged bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&logged, nil))
	path := filepath.Join(t.TempDir(), "enc.yaml")
	c, err := encryption.Generate(encryption.AESCBC, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := encryption.WriteFile(path, c); err != nil {
		t.Fatal(err)
	}
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	cfg.EncryptionProviderConfig, cfg.EncryptionProviderConfigAutomaticReload = path, true
	e, err := newSecretsEncryption(cfg, lg)
	if err != nil {
		t.Fatal(err)
	}
	tr := e.transformer("/registry/secrets/")
	old, _ := tr.TransformToStorage([]byte("v"))

	next, name, err := c.WithNewKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := encryption.WriteFile(path, next); err != nil {
		t.Fatal(err)
	}
	e.reloadIfChanged()
	out, _ := tr.TransformToStorage([]byte("v"))
	if !bytes.HasPrefix(out, []byte("k8s:enc:aescbc:v1:"+name+":")) {
		t.Fatalf("after the reload the store writes %q, want the new key %s", out[:30], name)
	}
	if _, stale, err := tr.TransformFromStorage(old); err != nil || !stale {
		t.Fatalf("old value after the reload: stale %v, %v", stale, err)
	}

	// A broken file leaves the configuration in force, and its secrets
	// stay out of the log.
	broken := strings.Replace(string(mustRead(t, path)), "aescbc:", "aescbc:\n    bogus: 1\n   ", 1)
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	e.reloadIfChanged()
	if out, _ := tr.TransformToStorage([]byte("v")); !bytes.HasPrefix(out, []byte("k8s:enc:aescbc:v1:"+name+":")) {
		t.Fatalf("a broken file changed the key in force: %q", out[:30])
	}
	if !strings.Contains(logged.String(), "encryption configuration not reloaded") {
		t.Fatalf("the broken file was not reported:\n%s", logged.String())
	}
	for _, k := range append(c.Resources[0].Providers[0].AESCBC.Keys, next.Resources[0].Providers[0].AESCBC.Keys...) {
		if strings.Contains(logged.String(), k.Secret) {
			t.Fatal("a key reached the log")
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
