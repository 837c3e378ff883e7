package storage_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-io/skiff/internal/storage"
	"github.com/skiff-io/skiff/internal/storage/storagetest"
)

// next reads one event of w, failing the test after a while.
func next(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return watch.Event{}
}

// sharedOf returns the Encodings of a shared event and the ConfigMap.
func sharedOf(t *testing.T, ev watch.Event) (*storage.Encodings, *corev1.ConfigMap) {
	t.Helper()
	so, ok := ev.Object.(*storage.SharedObject)
	if !ok {
		t.Fatalf("%s event carries %T, want *storage.SharedObject", ev.Type, ev.Object)
	}
	cm, ok := so.Object.(*corev1.ConfigMap)
	if !ok || so.Encodings == nil {
		t.Fatalf("shared object holds %T with encodings %p", so.Object, so.Encodings)
	}
	return so.Encodings, cm
}

// TestCacherWatchSharesEncodings checks that watchers that asked for
// shared encodings get the same Encodings for the same object, whether it
// reaches them as an initial event, a dispatched event or a replayed one,
// and that other watchers get plain objects.
func TestCacherWatchSharesEncodings(t *testing.T) {
	client := storagetest.StartEtcd(t)
	cfg := storagetest.ConfigMapConfig()
	c := startCacher(t, client, cfg, nil)
	ctx := context.Background()
	created := createN(t, c, cfg, 2)
	// ResourceVersion "" waits for the cache to hold every write made so
	// far; "0" may start from a cache that has not seen the creations, and
	// then they reach the watchers as dispatched events, shared only by
	// the watchers registered at that moment.
	shared := storage.ListOptions{SharedEncodings: true}
	watchFrom := func(opts storage.ListOptions) watch.Interface {
		w, err := c.Watch(ctx, cfg.Prefix, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		return w
	}
	w1, w2, plain := watchFrom(shared), watchFrom(shared), watchFrom(storage.ListOptions{})
	for i := range created {
		e1, cm1 := sharedOf(t, next(t, w1))
		e2, cm2 := sharedOf(t, next(t, w2))
		if e1 != e2 || cm1 != cm2 {
			t.Errorf("initial event %d: watchers got encodings %p and %p of objects %p and %p, want the same", i, e1, e2, cm1, cm2)
		}
		if ev := next(t, plain); ev.Type != watch.Added {
			t.Errorf("plain watcher: %s, want ADDED", ev.Type)
		} else if _, ok := ev.Object.(*corev1.ConfigMap); !ok {
			t.Errorf("plain watcher got %T, want *corev1.ConfigMap", ev.Object)
		}
	}

	// A change reaches both watchers with the same encodings, and those
	// are the ones of the object the cache now holds: a new watch's
	// initial event and a watch replaying the change share them too.
	key := storage.Key(cfg.Prefix, "ns", created[0].Name)
	if err := c.GuaranteedUpdate(ctx, key, nil, false, nil, func(cur runtime.Object) (runtime.Object, error) {
		cm := cur.(*corev1.ConfigMap)
		cm.Data = map[string]string{"k": "v"}
		return cm, nil
	}); err != nil {
		t.Fatal(err)
	}
	ev1, ev2 := next(t, w1), next(t, w2)
	e1, cm1 := sharedOf(t, ev1)
	e2, _ := sharedOf(t, ev2)
	if ev1.Type != watch.Modified || e1 != e2 {
		t.Errorf("update: %s with encodings %p and %p, want MODIFIED with the same", ev1.Type, e1, e2)
	}
	e3, cm3 := sharedOf(t, next(t, watchFrom(shared)))
	if e3 != e1 || cm3 != cm1 {
		t.Errorf("initial event of a new watch: encodings %p, want the update's %p", e3, e1)
	}
	replay := watchFrom(storage.ListOptions{ResourceVersion: created[1].ResourceVersion, SharedEncodings: true})
	e4, _ := sharedOf(t, next(t, replay))
	if e4 != e1 {
		t.Errorf("replayed update: encodings %p, want the update's %p", e4, e1)
	}
}

// TestEncodingsGet checks that concurrent callers of one form share one
// encode, and that forms are kept apart by key.
func TestEncodingsGet(t *testing.T) {
	var e storage.Encodings
	var calls atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = e.Get("json", func() ([]byte, error) {
				calls.Add(1)
				<-release
				return []byte("frame"), nil
			})
		}()
	}
	// The first caller's encode waits for release: callers that come
	// meanwhile must wait for it, not encode again.
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d encodes for 8 concurrent callers, want 1", n)
	}
	for i, b := range got {
		if &b[0] != &got[0][0] {
			t.Errorf("caller %d got its own bytes, want the shared ones", i)
		}
	}
	other, _ := e.Get("protobuf", func() ([]byte, error) { return []byte("other"), nil })
	if string(other) != "other" {
		t.Errorf("second form: %q, want %q", other, "other")
	}
}

// TestCacherEndsWatcherOverByteBound checks that a watcher that does not
// read is ended once the objects queued for it exceed WatcherBufferBytes,
// while a reading watcher always gets an object larger than the bound.
func TestCacherEndsWatcherOverByteBound(t *testing.T) {
	client := storagetest.StartEtcd(t)
	cfg := storagetest.ConfigMapConfig()
	const bound = 64 << 10
	c := startCacher(t, client, cfg, func(c *storage.Cacher) { c.WatcherBufferBytes = bound })
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
	// 20 objects of 16 KiB: far fewer events than WatcherBufferSize, five
	// times the byte bound; then one object larger than the bound.
	data := map[string]string{"d": strings.Repeat("x", 16<<10)}
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("o%04d", i)
		if err := c.Create(ctx, storage.Key(cfg.Prefix, "ns", name), storagetest.NewConfigMap(name, nil, data), nil, 0); err != nil {
			t.Fatal(err)
		}
		if ev := next(t, fast); ev.Type != watch.Added {
			t.Fatalf("reading watcher: %s, want ADDED", ev.Type)
		}
	}
	huge := map[string]string{"d": strings.Repeat("y", 2*bound)}
	if err := c.Create(ctx, storage.Key(cfg.Prefix, "ns", "huge"), storagetest.NewConfigMap("huge", nil, huge), nil, 0); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, fast); ev.Type != watch.Added || len(ev.Object.(*corev1.ConfigMap).Data["d"]) != 2*bound {
		t.Fatalf("reading watcher: %s of %T, want ADDED of the large object", ev.Type, ev.Object)
	}
	n, closed := drain(slow, 5*time.Second)
	// It may hold one event besides the 64 KiB it is allowed: 5 of 16 KiB.
	if !closed || n > 5 {
		t.Errorf("watcher that did not read: got %d events, closed=%v; want it ended after at most 5", n, closed)
	}
}

// TestCacherEndsSlowWatcherDuringInitialEvents checks that a watcher still
// sending its initial events is ended as soon as it falls behind, rather
// than after its reader has taken them all.
func TestCacherEndsSlowWatcherDuringInitialEvents(t *testing.T) {
	client := storagetest.StartEtcd(t)
	cfg := storagetest.ConfigMapConfig()
	c := startCacher(t, client, cfg, func(c *storage.Cacher) { c.WatcherBufferSize = 4 })
	ctx := context.Background()
	created := createN(t, c, cfg, 10)
	// Let the cache take in the ten creates first. A watch from "0" starts
	// from whatever the cache holds; creates it applies later are queued
	// behind the initial events, and with a bound of 4 they would end the
	// reading watcher too before its reader has begun.
	deadline := time.Now().Add(30 * time.Second)
	for {
		list := &corev1.ConfigMapList{}
		err := c.List(ctx, cfg.Prefix, storage.ListOptions{ResourceVersion: created[9].ResourceVersion}, list)
		if err == nil && len(list.Items) == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list at the last create's revision: %d items, %v", len(list.Items), err)
		}
	}
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
	for i := 0; i < 10; i++ {
		next(t, fast)
	}
	for i := 0; i < 10; i++ {
		createN1(t, c, cfg, fmt.Sprintf("n%04d", i))
		next(t, fast)
	}
	// The slow watcher is blocked on its first initial event; it must not
	// send the nine others.
	n, closed := drain(slow, 5*time.Second)
	if !closed || n > 1 {
		t.Errorf("watcher that did not read its initial events: got %d events, closed=%v; want it ended after at most 1", n, closed)
	}
}
