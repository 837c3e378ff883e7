package etcd

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"fmt"
	"github.com/skiff-io/skiff/internal/pki"
	clientv3 "go.etcd.io/etcd/client/v3"
	"strings"
	"sync"
	"sync/atomic"
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

// BenchmarkConcurrentPuts measures write throughput of the embedded member
// through the client the API server uses: 64 writers, 1.5 KiB values (a
// typical pod), each write a compare-and-swap transaction as the store does.
func BenchmarkConcurrentPuts(b *testing.B) {
	dir := b.TempDir()
	bundle, err := pki.Ensure(pki.Config{Dir: filepath.Join(dir, "tls")})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	e, err := Start(ctx, Config{
		DataDir:  filepath.Join(dir, "etcd"),
		CertFile: bundle.EtcdServerCertFile, KeyFile: bundle.EtcdServerKeyFile, TrustedCAFile: bundle.EtcdCAFile,
		ClientCertFile: bundle.EtcdClientCertFile, ClientKeyFile: bundle.EtcdClientKeyFile,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	value := strings.Repeat("x", 1536)
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				key := fmt.Sprintf("/registry/pods/bench/p-%d", i)
				_, err := e.Client().Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
					Then(clientv3.OpPut(key, value)).Commit()
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}
