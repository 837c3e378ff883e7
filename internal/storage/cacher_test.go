package storage_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/skiff-io/skiff/internal/storage"
	"github.com/skiff-io/skiff/internal/storage/storagetest"
)

// startCacher runs a Cacher for cfg until the test ends.
func startCacher(t testing.TB, client *clientv3.Client, cfg storage.Config, tune func(*storage.Cacher)) *storage.Cacher {
	t.Helper()
	c := storage.NewCacher(storage.NewStore(client, cfg), cfg)
	c.WaitTimeout = 500 * time.Millisecond
	if tune != nil {
		tune(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("cacher Run: %v", err)
		}
	})
	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatalf("cacher for %s not ready after 10s", cfg.Prefix)
	}
	return c
}

func TestCacher(t *testing.T) {
	client := storagetest.StartEtcd(t)
	storagetest.RunTests(t, func(t *testing.T, cfg storage.Config) storage.Interface {
		return storagetest.WithCompaction(startCacher(t, client, cfg, nil), client)
	})
}
