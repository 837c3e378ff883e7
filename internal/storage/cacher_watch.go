package storage

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/google/btree"
	"k8s.io/apimachinery/pkg/watch"
)

// snapshot returns a copy-on-write clone of the cache and its revision;
// the clone is safe to read while the cache moves on.
func (c *Cacher) snapshot() (*btree.BTreeG[*cacheEntry], int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tree.Clone(), c.rev
}

// ascendPrefix calls fn for each entry under prefix (or the one entry at
// key when it does not end in "/"), in key order, until fn returns false.
func ascendPrefix(tree *btree.BTreeG[*cacheEntry], key string, fn func(*cacheEntry) bool) {
	if !isPrefix(key) {
		if e, ok := tree.Get(&cacheEntry{key: key}); ok {
			fn(e)
		}
		return
	}
	end := prefixEnd(key)
	if end == "\x00" {
		tree.AscendGreaterOrEqual(&cacheEntry{key: key}, fn)
		return
	}
	tree.AscendRange(&cacheEntry{key: key}, &cacheEntry{key: end}, fn)
}

// Watch implements Interface from the cache. "" and "0" (and
// SendInitialEvents) start with the cached state as ADDED events ("" once
// the cache has caught up with etcd, else from etcd); "N" replays the
// buffered events after N and fails with ErrExpired when they are gone.
func (c *Cacher) Watch(ctx context.Context, key string, opts ListOptions) (watch.Interface, error) {
	if err := checkPredicate(opts.Predicate); err != nil {
		return nil, fmt.Errorf("watch %s: %w", key, err)
	}
	if !c.isReady() || !c.covers(key) {
		return c.store.Watch(ctx, key, opts)
	}
	rev, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", key, err)
	}
	initial := rev == 0
	if opts.SendInitialEvents != nil {
		initial = *opts.SendInitialEvents
	}
	switch {
	case opts.ResourceVersion == "":
		cur, err := c.store.currentRevision(ctx)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", key, err)
		}
		if !c.waitFor(ctx, cur) {
			return c.store.Watch(ctx, key, opts)
		}
	case rev > 0:
		if !c.waitFor(ctx, rev) {
			return nil, fmt.Errorf("watch %s: cache did not reach resourceVersion %d: %w", key, rev, ErrTimeout)
		}
	}

	bufSize := c.WatcherBufferSize
	if bufSize <= 0 {
		bufSize = DefaultWatcherBufferSize
	}
	w := &cacheWatcher{
		cacher:     c,
		key:        key,
		prefix:     isPrefix(key),
		pred:       opts.Predicate,
		bookmarks:  opts.AllowWatchBookmarks,
		initialEnd: opts.SendInitialEvents != nil && *opts.SendInitialEvents,
		input:      make(chan *cacheEvent, bufSize),
		result:     make(chan watch.Event),
		done:       make(chan struct{}),
	}
	c.mu.Lock()
	if initial {
		w.snapshot, w.startRev = c.tree.Clone(), c.rev
	} else {
		events, ok := c.ring.since(rev)
		if !ok {
			oldest := c.ring.startRev
			c.mu.Unlock()
			return nil, fmt.Errorf("watch %s from %d: oldest event held is after %d: %w", key, rev, oldest, ErrExpired)
		}
		w.replay, w.startRev = events, rev
	}
	c.nextID++
	w.id = c.nextID
	c.watchers[w.id] = w
	c.mu.Unlock()
	go w.run(ctx)
	return w, nil
}

// cacheWatcher is one watch served from the cache. The cacher's dispatch
// puts shared events into input without blocking; the watcher's goroutine
// sends the initial events, then filters input into result at the pace
// of its reader.
type cacheWatcher struct {
	cacher     *Cacher
	id         uint64
	key        string
	prefix     bool
	pred       Predicate
	bookmarks  bool
	initialEnd bool

	// Exactly one of snapshot (initial state) and replay (events after
	// startRev) is set.
	snapshot *btree.BTreeG[*cacheEntry]
	replay   []*cacheEvent
	startRev int64

	input  chan *cacheEvent // closed by the cacher when it drops the watcher
	result chan watch.Event
	done   chan struct{}
	once   sync.Once
}

func (w *cacheWatcher) Stop() {
	w.once.Do(func() {
		close(w.done)
		w.cacher.removeWatcher(w.id)
	})
}

func (w *cacheWatcher) ResultChan() <-chan watch.Event { return w.result }

// wants reports whether events for key concern this watcher.
func (w *cacheWatcher) wants(key string) bool {
	if w.prefix {
		return strings.HasPrefix(key, w.key)
	}
	return key == w.key
}

func (w *cacheWatcher) send(ctx context.Context, ev watch.Event) bool {
	select {
	case w.result <- ev:
		return true
	case <-w.done:
		return false
	case <-ctx.Done():
		return false
	}
}

func (w *cacheWatcher) run(ctx context.Context) {
	defer close(w.result)
	defer w.Stop()
	if w.snapshot != nil {
		ok := true
		ascendPrefix(w.snapshot, w.key, func(e *cacheEntry) bool {
			if matches(w.pred, e.obj) {
				ok = w.send(ctx, watch.Event{Type: watch.Added, Object: e.obj})
			}
			return ok
		})
		w.snapshot = nil
		if !ok {
			return
		}
	}
	for _, e := range w.replay {
		if !w.deliver(ctx, e) {
			return
		}
	}
	w.replay = nil
	if w.initialEnd {
		if !w.send(ctx, watch.Event{Type: watch.Bookmark, Object: bookmarkObject(w.cacher.cfg, w.startRev, true)}) {
			return
		}
	}
	for {
		select {
		case e, ok := <-w.input:
			if !ok {
				return
			}
			if !w.deliver(ctx, e) {
				return
			}
		case <-w.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

// deliver sends what e means to this watcher, if anything.
func (w *cacheWatcher) deliver(ctx context.Context, e *cacheEvent) bool {
	if e.typ == watch.Bookmark {
		if !w.bookmarks || e.rev < w.startRev {
			return true
		}
		return w.send(ctx, watch.Event{Type: watch.Bookmark, Object: e.obj})
	}
	if !w.wants(e.key) {
		return true
	}
	ev, ok := e.filter(w.pred)
	if !ok {
		return true
	}
	return w.send(ctx, ev)
}
