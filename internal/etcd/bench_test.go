package etcd

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiff-io/skiff/internal/pki"
)

// BenchmarkStart measures Start to ready for the embedded member on a fresh
// data directory and on a restart of one that holds data.
func BenchmarkStart(b *testing.B) {
	dir := b.TempDir()
	bundle, err := pki.Ensure(pki.Config{Dir: filepath.Join(dir, "tls")})
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{
		CertFile:       bundle.EtcdServerCertFile,
		KeyFile:        bundle.EtcdServerKeyFile,
		TrustedCAFile:  bundle.EtcdCAFile,
		ClientCertFile: bundle.EtcdClientCertFile,
		ClientKeyFile:  bundle.EtcdClientKeyFile,
		Logger:         slog.New(slog.DiscardHandler),
	}
	run := func(b *testing.B, dataDir func(i int) string) {
		for i := 0; b.Loop(); i++ {
			c := cfg
			c.DataDir = dataDir(i)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			e, err := Start(ctx, c)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if _, err := e.Client().Put(context.Background(), "k", "v"); err != nil {
				b.Fatal(err)
			}
			if err := e.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.Run("fresh", func(b *testing.B) {
		run(b, func(i int) string { return filepath.Join(b.TempDir(), "etcd") })
	})
	b.Run("restart", func(b *testing.B) {
		d := filepath.Join(b.TempDir(), "etcd")
		run(b, func(int) string { return d })
	})
}
