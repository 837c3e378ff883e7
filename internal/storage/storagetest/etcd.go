// Package storagetest is the conformance suite every storage.Interface
// passes (RunTests), and an embedded etcd for tests (StartEtcd).
package storagetest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/skiff-io/skiff/internal/storage"
)

// StartEtcd starts a single-member etcd in a temp dir on free loopback
// ports and returns a client of it. Both are closed in t.Cleanup.
func StartEtcd(t testing.TB) *clientv3.Client {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		e, err := startEtcd(t)
		if err != nil {
			// Most likely a port taken between picking and binding.
			lastErr = err
			continue
		}
		t.Cleanup(e.Close)
		client, err := clientv3.New(clientv3.Config{
			Endpoints:   []string{e.Clients[0].Addr().String()},
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			t.Fatalf("etcd client: %v", err)
		}
		t.Cleanup(func() { _ = client.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := client.Get(ctx, "health"); err != nil {
			t.Fatalf("etcd not answering: %v", err)
		}
		return client
	}
	t.Fatalf("start etcd: %v", lastErr)
	return nil
}

func startEtcd(t testing.TB) (*embed.Etcd, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = t.TempDir()
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true // tests do not need durability
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, err
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, fmt.Errorf("etcd not ready after 30s")
	}
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var (
		ports []int
		ls    []net.Listener
	)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// WithCompaction returns s with a Compact method that compacts the etcd
// behind client, for the suite's tests of ErrExpired.
func WithCompaction(s storage.Interface, client *clientv3.Client) storage.Interface {
	return compactable{Interface: s, client: client}
}

type compactable struct {
	storage.Interface
	client *clientv3.Client
}

func (c compactable) Compact(ctx context.Context, rev int64) error {
	_, err := c.client.Compact(ctx, rev)
	return err
}
