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

	maxEvents, maxBytes := c.WatcherBufferSize, c.WatcherBufferBytes
	if maxEvents <= 0 {
		maxEvents = DefaultWatcherBufferSize
	}
	if maxBytes <= 0 {
		maxBytes = DefaultWatcherBufferBytes
	}
	w := &cacheWatcher{
		cacher:     c,
		key:        key,
		prefix:     isPrefix(key),
		pred:       opts.Predicate,
		bookmarks:  opts.AllowWatchBookmarks,
		initialEnd: opts.SendInitialEvents != nil && *opts.SendInitialEvents,
		shared:     opts.SharedEncodings,
		maxEvents:  maxEvents,
		maxBytes:   maxBytes,
		wake:       make(chan struct{}, 1),
		ended:      make(chan struct{}),
		result:     make(chan watch.Event),
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
// queues shared events for it without blocking, and ends it when its
// queue is over its bound; the watcher's goroutine sends the initial
// events, then filters the queue into result at the pace of its reader.
type cacheWatcher struct {
	cacher     *Cacher
	id         uint64
	key        string
	prefix     bool
	pred       Predicate
	bookmarks  bool
	initialEnd bool
	// shared sends objects as *SharedObject.
	shared bool

	// Exactly one of snapshot (initial state) and replay (events after
	// startRev) is set.
	snapshot *btree.BTreeG[*cacheEntry]
	replay   []*cacheEvent
	startRev int64

	// mu guards the queue: queue[head:] are the events dispatched and not
	// yet taken, queuedBytes their size. The event being delivered is no
	// longer counted: a watcher holds at most maxEvents events and
	// maxBytes bytes besides it (or one event of any size).
	mu          sync.Mutex
	queue       []*cacheEvent
	head        int
	queuedBytes int
	maxEvents   int
	maxBytes    int
	closed      bool // ended: nothing more is queued
	// wake holds a token when events were queued, or the watcher ended,
	// since the goroutine last looked.
	wake chan struct{}
	// ended is closed by the cacher when it drops the watcher (it fell
	// behind, the cache relisted, or Stop).
	ended chan struct{}

	result chan watch.Event
	once   sync.Once
}

// Stop ends the watch: the cacher drops it, which ends its goroutine.
func (w *cacheWatcher) Stop() {
	w.once.Do(func() { w.cacher.removeWatcher(w.id) })
}

func (w *cacheWatcher) ResultChan() <-chan watch.Event { return w.result }

// wants reports whether events for key concern this watcher.
func (w *cacheWatcher) wants(key string) bool {
	if w.prefix {
		return strings.HasPrefix(key, w.key)
	}
	return key == w.key
}

// push queues e, unless the watcher already holds its bound of events or
// bytes: then it queues nothing and returns false, and the cacher must
// end the watcher. Called with the cacher's lock held.
func (w *cacheWatcher) push(e *cacheEvent) bool {
	w.mu.Lock()
	n := len(w.queue) - w.head
	if n > 0 && (n >= w.maxEvents || w.queuedBytes+e.size > w.maxBytes) {
		w.mu.Unlock()
		return false
	}
	w.appendLocked(e)
	w.queuedBytes += e.size
	w.mu.Unlock()
	w.signal()
	return true
}

// pushBookmark queues a bookmark unless the queue is full; a watcher is
// never ended for a bookmark.
func (w *cacheWatcher) pushBookmark(e *cacheEvent) {
	w.mu.Lock()
	if len(w.queue)-w.head >= w.maxEvents {
		w.mu.Unlock()
		return
	}
	w.appendLocked(e)
	w.mu.Unlock()
	w.signal()
}

func (w *cacheWatcher) appendLocked(e *cacheEvent) {
	if w.head > 0 && len(w.queue) == cap(w.queue) {
		// Reuse the taken slots instead of growing.
		n := copy(w.queue, w.queue[w.head:])
		clear(w.queue[n:])
		w.queue, w.head = w.queue[:n], 0
	}
	w.queue = append(w.queue, e)
}

func (w *cacheWatcher) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// pop takes the oldest queued event, nil when there is none; ended
// reports that the watcher has been dropped.
func (w *cacheWatcher) pop() (e *cacheEvent, ended bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, true
	}
	if w.head == len(w.queue) {
		return nil, false
	}
	e = w.queue[w.head]
	w.queue[w.head] = nil
	w.head++
	w.queuedBytes -= e.size
	if w.head == len(w.queue) {
		// Empty: start over, and let a queue that a burst grew go.
		w.head = 0
		if cap(w.queue) > 64 {
			w.queue = nil
		} else {
			w.queue = w.queue[:0]
		}
	}
	return e, false
}

// end drops the queue and tells the goroutine to stop. The cacher calls
// it once, when it removes the watcher from its set, with its lock held.
func (w *cacheWatcher) end() {
	w.mu.Lock()
	clear(w.queue)
	w.queue, w.head, w.queuedBytes, w.closed = nil, 0, 0, true
	w.mu.Unlock()
	close(w.ended)
	w.signal()
}

func (w *cacheWatcher) send(ctx context.Context, ev watch.Event) bool {
	select {
	case w.result <- ev:
		return true
	case <-w.ended:
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
				ev := watch.Event{Type: watch.Added, Object: e.obj}
				if w.shared {
					ev.Object = share(e.obj, &e.wire)
				}
				ok = w.send(ctx, ev)
			}
			return ok
		})
		w.snapshot = nil
		if !ok {
			return
		}
	}
	for _, e := range w.replay {
		if !w.deliver(ctx, e, true) {
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
		e, ended := w.pop()
		switch {
		case ended:
			return
		case e != nil:
			if !w.deliver(ctx, e, e.sharers > 1) {
				return
			}
		default:
			select {
			case <-w.wake:
			case <-ctx.Done():
				return
			}
		}
	}
}

// deliver sends what e means to this watcher, if anything, with shared
// encodings when it asked for them and share says they may be shared:
// replayed events always (watchers that resume together replay the same
// ones), dispatched events when they went to more than one such watcher.
// Making an object's shared cache costs more than the encoding saves when
// only one watcher writes it.
func (w *cacheWatcher) deliver(ctx context.Context, e *cacheEvent, share bool) bool {
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
	if w.shared && share {
		ev = e.shared(ev)
	}
	return w.send(ctx, ev)
}
