package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-io/skiff/internal/storage"
	"github.com/skiff-io/skiff/internal/storage/storagetest"
)

func createN1(t testing.TB, s storage.Interface, cfg storage.Config, name string) {
	t.Helper()
	if err := s.Create(context.Background(), storage.Key(cfg.Prefix, "ns", name), storagetest.NewConfigMap(name, nil, nil), nil, 0); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

func createN(t testing.TB, s storage.Interface, cfg storage.Config, n int) []*corev1.ConfigMap {
	t.Helper()
	var out []*corev1.ConfigMap
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("o%04d", i)
		got := &corev1.ConfigMap{}
		if err := s.Create(context.Background(), storage.Key(cfg.Prefix, "ns", name), storagetest.NewConfigMap(name, nil, nil), got, 0); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		out = append(out, got)
	}
	return out
}

// drain reads w until it closes or quiet passes without an event.
func drain(w watch.Interface, quiet time.Duration) (n int, closed bool) {
	for {
		select {
		case _, ok := <-w.ResultChan():
			if !ok {
				return n, true
			}
			n++
		case <-time.After(quiet):
			return n, false
		}
	}
}

func TestCacherEndsSlowWatcher(t *testing.T) {
	client := storagetest.StartEtcd(t)
	cfg := storagetest.ConfigMapConfig()
	c := startCacher(t, client, cfg, func(c *storage.Cacher) { c.WatcherBufferSize = 4 })
	ctx := context.Background()
	slow, err := c.Watch(ctx, cfg.Prefix, storage.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Stop()
	fast, err := c.Watch(ctx, cfg.Prefix, storage.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Stop()
	// Each write is read by the fast watcher before the next one, so it
	// never has more than one event pending; the slow one never reads.
	for i := 0; i < 20; i++ {
		createN1(t, c, cfg, fmt.Sprintf("o%04d", i))
		select {
		case _, ok := <-fast.ResultChan():
			if !ok {
				t.Fatalf("reading watcher ended after %d events", i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("reading watcher got no event for write %d", i)
		}
	}
	n, closed := drain(slow, 5*time.Second)
	if !closed || n >= 20 {
		t.Errorf("watcher that did not read: got %d events, closed=%v; want it ended before 20", n, closed)
	}
}

func TestCacherWatchOlderThanBuffer(t *testing.T) {
	client := storagetest.StartEtcd(t)
	cfg := storagetest.ConfigMapConfig()
	c := startCacher(t, client, cfg, func(c *storage.Cacher) { c.EventBufferSize = 5 })
	objs := createN(t, c, cfg, 10)
	// Wait until the cache has seen all ten.
	if err := c.Get(context.Background(), storage.Key(cfg.Prefix, "ns", "o0009"), objs[9].ResourceVersion, &corev1.ConfigMap{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Watch(context.Background(), cfg.Prefix, storage.ListOptions{ResourceVersion: objs[0].ResourceVersion})
	if !errors.Is(err, storage.ErrExpired) {
		t.Fatalf("watch from an evicted revision: %v, want ErrExpired", err)
	}
	w, err := c.Watch(context.Background(), cfg.Prefix, storage.ListOptions{ResourceVersion: objs[7].ResourceVersion})
	if err != nil {
		t.Fatalf("watch from a buffered revision: %v", err)
	}
	defer w.Stop()
	n, _ := drain(w, 300*time.Millisecond)
	if n != 2 {
		t.Errorf("replayed %d events after the 8th write, want 2", n)
	}
}

// TestCacherConsistentReadOnIdleResource checks that a consistent list of
// a resource nobody writes, while others are written, is served: the cache
// asks etcd for progress instead of waiting for an event of its own.
func TestCacherConsistentReadOnIdleResource(t *testing.T) {
	client := storagetest.StartEtcd(t)
	cfg := storagetest.ConfigMapConfig()
	c := startCacher(t, client, cfg, func(c *storage.Cacher) { c.WaitTimeout = time.Minute })
	// A watch from the current revision on the shared stream must not
	// hold up the cache's progress.
	other := storagetest.ConfigMapConfig()
	os := storage.NewStore(client, other)
	ow, err := os.Watch(context.Background(), other.Prefix, storage.ListOptions{ResourceVersion: "1000000"})
	if err == nil {
		defer ow.Stop()
	}
	last := createN(t, os, other, 3)[2]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list := &corev1.ConfigMapList{}
	// Should the cache not catch up, it would wait past ctx's deadline and
	// the fallback read would fail on the expired ctx.
	if err := c.List(ctx, cfg.Prefix, storage.ListOptions{}, list); err != nil {
		t.Fatalf("consistent list of an idle resource: %v", err)
	}
	got, _ := strconv.ParseInt(list.ResourceVersion, 10, 64)
	want, _ := strconv.ParseInt(last.ResourceVersion, 10, 64)
	if got < want {
		t.Errorf("list at %s, older than the last write %s", list.ResourceVersion, last.ResourceVersion)
	}
}

// BenchmarkCacherWatchFanout measures a write reaching 1,000 watchers.
func BenchmarkCacherWatchFanout(b *testing.B) {
	client := storagetest.StartEtcd(b)
	cfg := storagetest.ConfigMapConfig()
	c := startCacher(b, client, cfg, nil)
	const watchers = 1000
	var got sync.WaitGroup
	for i := 0; i < watchers; i++ {
		w, err := c.Watch(context.Background(), cfg.Prefix, storage.ListOptions{ResourceVersion: "0"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(w.Stop)
		go func() {
			for range w.ResultChan() {
				got.Done()
			}
		}()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got.Add(watchers)
		name := fmt.Sprintf("b%06d", i)
		if err := c.Create(context.Background(), storage.Key(cfg.Prefix, "ns", name), storagetest.NewConfigMap(name, nil, nil), nil, 0); err != nil {
			b.Fatal(err)
		}
		got.Wait()
	}
}
