package etcd

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

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

// BenchmarkClusterPuts measures write throughput and latency through the
// API server's client (in process, to its own member) with the member
// alone and as one of three clustered members (all on this machine, so
// the three share its CPUs and disk): 64 writers, 1.5 KiB compare-and-swap
// writes, as BenchmarkConcurrentPuts.
func BenchmarkClusterPuts(b *testing.B) {
	dir := b.TempDir()
	bundle, err := pki.Ensure(pki.Config{Dir: filepath.Join(dir, "tls")})
	if err != nil {
		b.Fatal(err)
	}
	base := Config{
		CertFile: bundle.EtcdServerCertFile, KeyFile: bundle.EtcdServerKeyFile, TrustedCAFile: bundle.EtcdCAFile,
		ClientCertFile: bundle.EtcdClientCertFile, ClientKeyFile: bundle.EtcdClientKeyFile,
		Logger: slog.New(slog.DiscardHandler),
	}
	member := func(i int, join ...string) Config {
		ports, err := freePorts(2)
		if err != nil {
			b.Fatal(err)
		}
		c := base
		c.DataDir = filepath.Join(b.TempDir(), "etcd")
		c.Member = MemberConfig{Name: fmt.Sprintf("m%d", i), IP: "127.0.0.1", ClientPort: ports[0], PeerPort: ports[1], Join: join}
		return c
	}
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			ctx := context.Background()
			var first *Etcd
			var urls []string
			for i := range n {
				c := member(i, urls...)
				e, err := Start(ctx, c)
				if err != nil {
					b.Fatal(err)
				}
				defer e.Close()
				if first == nil {
					first = e
				}
				u := c.Member.clientURL(c.Member.IP)
				urls = append(urls, u.String())
			}
			value := strings.Repeat("x", 1536)
			var next atomic.Int64
			lat := make([]time.Duration, b.N)
			b.ResetTimer()
			var wg sync.WaitGroup
			for range 64 {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						key := fmt.Sprintf("/registry/pods/bench/p-%d", i)
						began := time.Now()
						_, err := first.Client().Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
							Then(clientv3.OpPut(key, value)).Commit()
						lat[i-1] = time.Since(began)
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		})
	}
}
