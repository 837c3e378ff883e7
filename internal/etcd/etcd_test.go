package etcd

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/skiff-io/skiff/internal/etcd/etcdtest"
	"github.com/skiff-io/skiff/internal/pki"
)

// embeddedConfig returns a Config for an embedded member in a fresh
// directory with certificates from pki.
func embeddedConfig(t *testing.T) Config {
	t.Helper()
	dir := t.TempDir()
	b, err := pki.Ensure(pki.Config{Dir: filepath.Join(dir, "tls")})
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		DataDir:        filepath.Join(dir, "etcd"),
		CertFile:       b.EtcdServerCertFile,
		KeyFile:        b.EtcdServerKeyFile,
		TrustedCAFile:  b.EtcdCAFile,
		ClientCertFile: b.EtcdClientCertFile,
		ClientKeyFile:  b.EtcdClientKeyFile,
		Logger:         slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func start(t *testing.T, cfg Config) *Etcd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	begin := time.Now()
	e, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start to ready: %v", time.Since(begin))
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestEmbeddedPersistsAcrossRestart(t *testing.T) {
	cfg := embeddedConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	e := start(t, cfg)
	if !e.Embedded() {
		t.Fatalf("Embedded() = false")
	}
	if _, err := e.Client().Put(ctx, "/registry/k", "v1"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	resp, err := e.Client().Get(ctx, "/registry/k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" {
		t.Fatalf("Get = %v, %v; want v1", resp, err)
	}
	if err := e.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	e = start(t, cfg)
	resp, err = e.Client().Get(ctx, "/registry/k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" {
		t.Fatalf("Get after restart = %v, %v; want v1", resp, err)
	}
}

func TestEmbeddedRequiresClientCertificate(t *testing.T) {
	cfg := embeddedConfig(t)
	e := start(t, cfg)

	// A client that trusts the server but presents no certificate is
	// refused.
	bare, err := newClient(Config{ClientCAFile: cfg.TrustedCAFile, Logger: slog.New(slog.DiscardHandler)}, e.Endpoints(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := bare.Get(ctx, "x"); err == nil {
		t.Errorf("Get without a client certificate succeeded; want refusal")
	}
	for _, ep := range e.Endpoints() {
		if !strings.HasPrefix(ep, "https://127.0.0.1:") {
			t.Errorf("endpoint %q, want https on 127.0.0.1", ep)
		}
	}
}

func TestStartConfigErrors(t *testing.T) {
	good := embeddedConfig(t)
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no data dir", func(c *Config) { c.DataDir = "" }},
		{"no server cert", func(c *Config) { c.CertFile = "" }},
		{"no client cert", func(c *Config) { c.ClientCertFile = "" }},
		{"missing CA file", func(c *Config) { c.TrustedCAFile = filepath.Join(t.TempDir(), "nope.crt") }},
		{"external cert without key", func(c *Config) { c.Servers = []string{"http://127.0.0.1:1"}; c.ClientKeyFile = "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			cfg.DataDir = filepath.Join(t.TempDir(), "etcd")
			tc.edit(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			e, err := Start(ctx, cfg)
			if err == nil {
				e.Close()
				t.Fatalf("Start succeeded; want error")
			}
		})
	}
}

func TestStartRespectsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// Nothing listens there: the external read waits until ctx ends.
	_, err := Start(ctx, Config{Servers: []string{"http://127.0.0.1:1"}, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		t.Fatalf("Start against a dead endpoint succeeded")
	}
}

func TestExternalClusterSurvivesMemberLoss(t *testing.T) {
	endpoints, stop := etcdtest.StartTestCluster(t, 3)
	e := start(t, Config{Servers: endpoints, Logger: slog.New(slog.DiscardHandler)})
	if e.Embedded() {
		t.Fatalf("Embedded() = true with Servers set")
	}
	if e.Err() != nil {
		t.Errorf("Err() is not nil for an external cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := e.Client().Put(ctx, "before", "1"); err != nil {
		t.Fatalf("Put: %v", err)
	}

	stop(0)
	stop(0) // idempotent

	for i := range 5 {
		// Each write gets its own deadline; the client moves to the live
		// members and, if the leader was stopped, waits for the election.
		wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
		_, err := e.Client().Put(wctx, "after", string(rune('a'+i)))
		wcancel()
		if err != nil {
			t.Fatalf("Put %d after stopping a member: %v", i, err)
		}
	}
	resp, err := e.Client().Get(ctx, "", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	for _, kv := range resp.Kvs {
		got.WriteString(string(kv.Key) + "=" + string(kv.Value) + " ")
	}
	if want := "after=e before=1 "; got.String() != want {
		t.Errorf("keys = %q, want %q", got.String(), want)
	}
	if err := e.Ready(ctx); err != nil {
		t.Errorf("Ready with 2 of 3 members: %v", err)
	}

	// Losing quorum makes Ready fail.
	stop(1)
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
	defer rcancel()
	if err := e.Ready(rctx); err == nil {
		t.Errorf("Ready with 1 of 3 members succeeded; want error")
	}
}
