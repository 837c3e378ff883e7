package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/btree"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// Defaults of the Cacher's tunables.
const (
	DefaultWaitTimeout        = 3 * time.Second
	DefaultEventBufferSize    = 4096
	DefaultWatcherBufferSize  = 1024
	DefaultWatcherBufferBytes = 32 << 20
)

// Cacher is Interface with a watch cache in front of a Store: it holds
// every object of the resource and its most recent events in memory, fed
// by one etcd watch, and serves lists and watches from there. Writes, and
// reads that must see etcd itself (Get at "", exact and paginated lists),
// go to the Store.
//
// The fields below may be set after NewCacher and before Run.
type Cacher struct {
	// WaitTimeout bounds how long a read waits for the cache to reach a
	// revision (consistent reads, "not older than N").
	WaitTimeout time.Duration
	// EventBufferSize is how many recent events watches can resume from.
	EventBufferSize int
	// WatcherBufferSize is how many events a watcher may fall behind
	// before it is ended.
	WatcherBufferSize int
	// WatcherBufferBytes is how many bytes of objects (as stored) a
	// watcher may fall behind by before it is ended, so that a slow
	// watcher cannot pin much memory; an idle watcher always takes one
	// event, however large. Upstream bounds only the number of events.
	WatcherBufferBytes int
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	store *Store
	cfg   Config
	ready chan struct{}
	// large is closed when the first list turns out to take more than
	// one page (see ReadinessCheck).
	large chan struct{}

	mu   sync.Mutex
	tree *btree.BTreeG[*cacheEntry]
	// rev is the revision the cache is at: every event up to it applied.
	rev int64
	// revChanged is closed (and replaced) whenever rev advances.
	revChanged chan struct{}
	ring       *eventRing
	watchers   map[uint64]*cacheWatcher
	nextID     uint64
	// dispatching is dispatchLocked's scratch list of an event's watchers.
	dispatching []*cacheWatcher
	// watchCtx is the context of the running etcd watch, for progress
	// requests; nil while there is none.
	watchCtx context.Context
}

var _ Interface = (*Cacher)(nil)

// NewCacher returns a Cacher in front of store for the resource cfg
// describes. It serves nothing from memory until Run has listed.
func NewCacher(store *Store, cfg Config) *Cacher {
	return &Cacher{
		WaitTimeout:        DefaultWaitTimeout,
		EventBufferSize:    DefaultEventBufferSize,
		WatcherBufferSize:  DefaultWatcherBufferSize,
		WatcherBufferBytes: DefaultWatcherBufferBytes,
		store:              store,
		cfg:                cfg,
		ready:              make(chan struct{}),
		large:              make(chan struct{}),
		tree:               btree.NewG(32, entryLess),
		revChanged:         make(chan struct{}),
		watchers:           map[uint64]*cacheWatcher{},
	}
}

// Ready is closed once the cache holds its first list.
func (c *Cacher) Ready() <-chan struct{} { return c.ready }

// ReadinessCheck is the cache's part in the server's /readyz: nil once
// the cache holds its first list, or while a first list of more than one
// page (fillPageSize, 10,000 objects) is still filling; an error before.
//
// Upstream's API server holds readiness until every watch cache of a
// built-in resource is filled, or --storage-initialization-timeout (a
// minute) has passed. Filling takes time in proportion to the objects:
// 2.5 s at 250,000 1 KiB ConfigMaps on two cores, more than etcd takes to
// open them. A cache that is not filled serves nothing itself: Get, List
// and Watch go to etcd (upstream's delegates Get and List too, and
// answers a Watch 429 until it is filled), so the answers are the same,
// only dearer, and readiness need not wait for the large caches.
func (c *Cacher) ReadinessCheck() error {
	select {
	case <-c.ready:
		return nil
	case <-c.large:
		return nil
	default:
		return fmt.Errorf("watch cache %s not filled", c.cfg.Prefix)
	}
}

// markLarge records that the first list is large (once; only Run calls it).
func (c *Cacher) markLarge() {
	select {
	case <-c.large:
	default:
		close(c.large)
	}
}

func (c *Cacher) isReady() bool {
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

func (c *Cacher) log() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// Run fills the cache and keeps it current until ctx ends: it lists the
// prefix, then follows one etcd watch from the list's revision, and starts
// over (ending every watcher, which must re-watch) when the watch fails or
// is compacted. It returns nil when ctx ends.
func (c *Cacher) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.ring == nil {
		size := c.EventBufferSize
		if size <= 0 {
			size = DefaultEventBufferSize
		}
		c.ring = newEventRing(size)
	}
	c.mu.Unlock()
	backoff := 100 * time.Millisecond
	for {
		err := c.listAndWatch(ctx)
		c.terminateWatchers()
		if ctx.Err() != nil {
			return nil
		}
		c.log().Warn("watch cache restarting", "prefix", c.cfg.Prefix, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// listAndWatch loads the cache and follows etcd until the watch fails.
func (c *Cacher) listAndWatch(ctx context.Context) error {
	began := time.Now()
	entries, rev, err := c.listAll(ctx)
	if err != nil {
		return err
	}
	if int64(len(entries)) > fillPageSize {
		c.log().Info("watch cache filled", "prefix", c.cfg.Prefix, "objects", len(entries), "took", time.Since(began).Round(time.Millisecond))
	}
	tree := btree.NewG(32, entryLess)
	for _, e := range entries {
		tree.ReplaceOrInsert(e)
	}
	// The cache's etcd watch gets a gRPC stream of its own (the client
	// groups watches into streams by outgoing metadata). etcd answers a
	// progress request only when every watch of the stream has caught up
	// with the store's revision, which a watch just started at the current
	// revision has not; sharing a stream with such watches would stall the
	// progress that consistent reads wait for.
	wctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(ctx, "skiff-watch-cache", c.cfg.Prefix))
	defer cancel()
	c.mu.Lock()
	c.tree = tree
	c.ring.reset(rev)
	c.setRevLocked(rev)
	c.watchCtx = wctx
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.watchCtx = nil
		c.mu.Unlock()
	}()
	select {
	case <-c.ready:
	default:
		close(c.ready)
	}

	wch := c.store.client.Watch(wctx, c.cfg.Prefix, clientv3.WithRange(prefixEnd(c.cfg.Prefix)),
		clientv3.WithRev(rev+1), clientv3.WithPrevKV(), clientv3.WithProgressNotify())
	ticker := time.NewTicker(c.cfg.bookmarkInterval())
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
			c.sendBookmarks()
			// Keeps rev current while the resource is idle.
			_ = c.store.client.RequestProgress(wctx)
		case resp, ok := <-wch:
			if !ok {
				return errors.New("etcd watch closed")
			}
			if resp.CompactRevision != 0 {
				return fmt.Errorf("etcd watch compacted at %d: %w", resp.CompactRevision, ErrExpired)
			}
			if err := resp.Err(); err != nil {
				return fmt.Errorf("etcd watch: %w", err)
			}
			if resp.IsProgressNotify() {
				c.mu.Lock()
				c.setRevLocked(resp.Header.Revision)
				c.mu.Unlock()
				continue
			}
			if err := c.apply(resp.Events); err != nil {
				return err
			}
		}
	}
}

// Tunables of a cache's list (variables for tests): fillPageSize is the
// objects read from etcd at once; fillDecoders bounds the goroutines
// decoding pages, 0 meaning GOMAXPROCS.
var (
	fillPageSize int64 = maxPageSize
	fillDecoders       = 0
)

// listAll reads every object under the prefix at one revision, in pages
// of fillPageSize read one after the other, and decodes them while it
// reads on: each page is decoded on a goroutine of its own, at most
// fillDecoders (GOMAXPROCS) at once, and the entries come back in key
// order. Reading a page costs etcd about as much as decoding it costs
// the cache, so at 250,000 objects this fills in about half the time of
// reading and decoding in turn. Pages not yet decoded are the only ones
// held raw, so at most fillDecoders+1 of them are at a time.
func (c *Cacher) listAll(ctx context.Context) ([]*cacheEntry, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := fillDecoders
	if workers <= 0 {
		workers = goruntime.GOMAXPROCS(0)
	}
	type page struct {
		kvs     []*mvccpb.KeyValue
		entries []*cacheEntry
	}
	var (
		pages    []*page
		rev      int64
		wg       sync.WaitGroup
		sem      = make(chan struct{}, workers)
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	decode := func(p *page) {
		defer wg.Done()
		defer func() { <-sem }()
		p.entries = make([]*cacheEntry, 0, len(p.kvs))
		for _, kv := range p.kvs {
			if ctx.Err() != nil {
				return
			}
			obj, err := c.store.codec.decode(kv.Value, kv.ModRevision)
			if err != nil {
				fail(fmt.Errorf("list %s: %s: %w", c.cfg.Prefix, kv.Key, err))
				return
			}
			p.entries = append(p.entries, &cacheEntry{key: string(kv.Key), obj: obj, size: len(kv.Value)})
		}
		p.kvs = nil
	}
	key, end := c.cfg.Prefix, prefixEnd(c.cfg.Prefix)
	for ctx.Err() == nil {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(fillPageSize)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		start := time.Now()
		resp, err := c.store.client.Get(ctx, key, opts...)
		observe("list", c.cfg.resourceLabel(), start)
		if err != nil {
			fail(fmt.Errorf("list %s: %w", c.cfg.Prefix, etcdErr(err)))
			break
		}
		if rev == 0 {
			rev = resp.Header.Revision
			if resp.More {
				c.markLarge()
			}
		}
		if len(resp.Kvs) > 0 {
			p := &page{kvs: resp.Kvs}
			pages = append(pages, p)
			sem <- struct{}{}
			wg.Add(1)
			if !resp.More {
				decode(p) // the last (often the only) page: no goroutine
				break
			}
			go decode(p)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = fmt.Errorf("list %s: %w", c.cfg.Prefix, ctx.Err())
	}
	if firstErr != nil {
		return nil, 0, firstErr
	}
	n := 0
	for _, p := range pages {
		n += len(p.entries)
	}
	entries := make([]*cacheEntry, 0, n)
	for _, p := range pages {
		entries = append(entries, p.entries...)
	}
	return entries, rev, nil
}

// apply records a batch of etcd events: the cache, the ring and every
// watcher see them in revision order. New values are decoded before the
// lock is taken.
func (c *Cacher) apply(events []*clientv3.Event) error {
	objs := make([]runtime.Object, len(events))
	for i, ev := range events {
		if ev.Type != mvccpb.PUT {
			continue
		}
		obj, err := c.store.codec.decode(ev.Kv.Value, ev.Kv.ModRevision)
		if err != nil {
			return fmt.Errorf("watch %s: %s: %w", c.cfg.Prefix, ev.Kv.Key, err)
		}
		objs[i] = obj
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, ev := range events {
		key, rev := string(ev.Kv.Key), ev.Kv.ModRevision
		var ce *cacheEvent
		if ev.Type == mvccpb.PUT {
			entry := &cacheEntry{key: key, obj: objs[i], size: len(ev.Kv.Value)}
			old, had := c.tree.ReplaceOrInsert(entry)
			if had {
				ce = newCacheEvent(key, rev, watch.Modified, objs[i], old.obj, entry.size, &entry.wire)
			} else {
				ce = newCacheEvent(key, rev, watch.Added, objs[i], nil, entry.size, &entry.wire)
			}
		} else {
			old, had := c.tree.Delete(&cacheEntry{key: key})
			var (
				last runtime.Object
				size int
			)
			switch {
			case had:
				last, size = old.obj.DeepCopyObject(), old.size
				_ = setResourceVersion(last, rev)
			case ev.PrevKv != nil:
				obj, err := c.store.codec.decode(ev.PrevKv.Value, rev)
				if err != nil {
					return fmt.Errorf("watch %s: %s: %w", c.cfg.Prefix, key, err)
				}
				last, size = obj, len(ev.PrevKv.Value)
			default:
				continue // a key the cache never had: nothing to tell
			}
			ce = newCacheEvent(key, rev, watch.Deleted, last, nil, size, nil)
		}
		c.ring.push(ce)
		c.dispatchLocked(ce)
		c.setRevLocked(rev)
	}
	return nil
}

// setRevLocked advances the cache's revision and wakes its waiters.
func (c *Cacher) setRevLocked(rev int64) {
	if rev <= c.rev && c.rev != 0 {
		return
	}
	c.rev = rev
	close(c.revChanged)
	c.revChanged = make(chan struct{})
}

// dispatchLocked queues e for every watcher of its key. A watcher that
// is over its bound (WatcherBufferSize events, WatcherBufferBytes bytes)
// is ended instead of waited for.
//
// The event's sharers, the watchers it goes to that share encodings, are
// counted before any of them can see it: an event that goes to one such
// watcher is not worth a shared cache (see cacheWatcher.deliver).
func (c *Cacher) dispatchLocked(e *cacheEvent) {
	ws := c.dispatching[:0]
	for _, w := range c.watchers {
		if w.wants(e.key) {
			ws = append(ws, w)
			if w.shared {
				e.sharers++
			}
		}
	}
	for _, w := range ws {
		if !w.push(e) {
			c.log().Debug("watcher fell behind, ending it", "prefix", c.cfg.Prefix, "watch", w.key)
			delete(c.watchers, w.id)
			w.end()
		}
	}
	clear(ws)
	c.dispatching = ws[:0]
}

// sendBookmarks gives every watcher that asked for bookmarks one at the
// cache's revision; a watcher with a full buffer skips this one.
func (c *Cacher) sendBookmarks() {
	c.mu.Lock()
	defer c.mu.Unlock()
	var e *cacheEvent
	for _, w := range c.watchers {
		if !w.bookmarks {
			continue
		}
		if e == nil {
			e = &cacheEvent{rev: c.rev, change: change{typ: watch.Bookmark, obj: bookmarkObject(c.cfg, c.rev, false)}}
		}
		w.pushBookmark(e)
	}
}

// terminateWatchers ends every watcher: after a relist the cache cannot
// vouch for the events between the old watch and the new list.
func (c *Cacher) terminateWatchers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, w := range c.watchers {
		delete(c.watchers, id)
		w.end()
	}
}

// removeWatcher unregisters a watcher (once).
func (c *Cacher) removeWatcher(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, ok := c.watchers[id]; ok {
		delete(c.watchers, id)
		w.end()
	}
}

// waitFor waits until the cache is at rev or later, asking etcd for
// progress so that an idle resource catches up; false on timeout.
func (c *Cacher) waitFor(ctx context.Context, rev int64) bool {
	timeout := c.WaitTimeout
	if timeout <= 0 {
		timeout = DefaultWaitTimeout
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var nudge <-chan time.Time
	for {
		c.mu.Lock()
		cur, changed, wctx := c.rev, c.revChanged, c.watchCtx
		c.mu.Unlock()
		if cur >= rev {
			return true
		}
		if nudge == nil {
			if wctx != nil {
				_ = c.store.client.RequestProgress(wctx)
			}
			nudge = time.After(200 * time.Millisecond)
		}
		select {
		case <-changed:
		case <-nudge:
			nudge = nil
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// covers reports whether key lies in the cached prefix.
func (c *Cacher) covers(key string) bool { return strings.HasPrefix(key, c.cfg.Prefix) }
