package storage

import (
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// cacheEntry is one object in the watch cache. obj is shared by every
// reader and never mutated.
type cacheEntry struct {
	key string
	obj runtime.Object
	// size is the length of obj as stored in etcd: what a watcher holding
	// it is charged (see Cacher.WatcherBufferBytes).
	size int
	// wire holds obj's serialized forms while watchers write them, shared
	// by the initial events of every watch and by the events that carry
	// obj.
	wire encodingsRef
}

func entryLess(a, b *cacheEntry) bool { return a.key < b.key }

// cacheEvent is one change as the cache recorded it, shared by every
// watcher it is sent to. A Bookmark event has only rev and obj.
type cacheEvent struct {
	key string
	rev int64
	change
	// size is what a watcher that has the event queued is charged: the
	// stored size of obj.
	size int
	// wire and prevWire hold the serialized forms of obj and of
	// prevAtRev's object; wire is the cache entry's own when obj is the
	// object the cache holds.
	wire     *encodingsRef
	prevWire encodingsRef
	// sharers is how many watchers that share encodings the event was
	// dispatched to (set before any of them sees it).
	sharers int
	// at is when the event entered the ring (Unix nanoseconds).
	at int64
}

// newCacheEvent builds the event of a change to key at rev. The DELETED
// object of a "stopped matching" transition is made at most once, by the
// first watcher that needs it. wire is obj's, nil for a new one.
func newCacheEvent(key string, rev int64, typ watch.EventType, obj, prev runtime.Object, size int, wire *encodingsRef) *cacheEvent {
	if wire == nil {
		wire = new(encodingsRef)
	}
	e := &cacheEvent{key: key, rev: rev, change: change{typ: typ, obj: obj, prev: prev}, size: size, wire: wire}
	if prev != nil {
		e.prevAtRev = sync.OnceValue(func() runtime.Object {
			cp := prev.DeepCopyObject()
			_ = setResourceVersion(cp, rev)
			return cp
		})
	}
	return e
}

// shared returns ev, the event e means to one watcher (see filter), with
// its object wrapped in the Encodings every watcher of it shares.
func (e *cacheEvent) shared(ev watch.Event) watch.Event {
	switch {
	case e.typ == watch.Bookmark:
	case ev.Object == e.obj:
		ev.Object = share(ev.Object, e.wire)
	default: // prevAtRev's object
		ev.Object = share(ev.Object, &e.prevWire)
	}
	return ev
}

// eventRing holds the most recent events of a resource, oldest first. It
// can replay every event after any revision in [startRev, newest].
//
// Its buffer grows by doubling up to size, so the rings of the many
// resources that rarely change (most of the ~50 a server caches) stay a
// few hundred bytes instead of size pointers each.
//
// It also holds a window of time rather than only a count, as upstream's
// watch cache does: once it holds more than ringMinEvents, events older
// than ringRetention are dropped. Without it a resource that changes once
// a second at idle (the leaders' Leases) kept over an hour of events, and
// an idle server's memory grew for that hour. A watch from a revision the
// window has dropped gets 410 Gone and relists, as from upstream.
type eventRing struct {
	buf   []*cacheEvent
	size  int // the most events held
	first int // index of the oldest event
	n     int
	// now is time.Now; tests replace it.
	now func() time.Time
	// startRev is the newest revision whose events are no longer (or
	// were never) in the ring: a watch from startRev or later can be
	// served.
	startRev int64
}

const (
	// initialRingCap is a new ring's buffer length.
	initialRingCap = 16
	// ringRetention and ringMinEvents bound the window of events kept:
	// upstream's keeps between 75 s and 5 min of them, at least 100.
	ringRetention = 5 * time.Minute
	ringMinEvents = 100
)

func newEventRing(size int) *eventRing {
	return &eventRing{buf: make([]*cacheEvent, min(size, initialRingCap)), size: size}
}

// reset empties the ring after a (re)list at rev.
func (r *eventRing) reset(rev int64) {
	clear(r.buf)
	r.first, r.n, r.startRev = 0, 0, rev
}

// push appends e, evicting the oldest event when the ring is full.
func (r *eventRing) push(e *cacheEvent) {
	if r.n == len(r.buf) && len(r.buf) < r.size {
		grown := make([]*cacheEvent, min(2*len(r.buf), r.size))
		for i := range r.n {
			grown[i] = r.at(i)
		}
		r.buf, r.first = grown, 0
	}
	if r.n == len(r.buf) {
		r.evictOldest()
	}
	r.buf[(r.first+r.n)%len(r.buf)] = e
	r.n++
	now := time.Now
	if r.now != nil {
		now = r.now
	}
	e.at = now().UnixNano()
	for r.n > ringMinEvents && e.at-r.buf[r.first].at > int64(ringRetention) {
		r.evictOldest()
	}
}

// evictOldest drops the oldest event; a watch from before it can no
// longer be served.
func (r *eventRing) evictOldest() {
	r.startRev = r.buf[r.first].rev
	r.buf[r.first] = nil
	r.first = (r.first + 1) % len(r.buf)
	r.n--
}

func (r *eventRing) at(i int) *cacheEvent { return r.buf[(r.first+i)%len(r.buf)] }

// since returns the events after rev, oldest first; ok is false when
// some of them have been evicted (rev < startRev).
func (r *eventRing) since(rev int64) (events []*cacheEvent, ok bool) {
	if rev < r.startRev {
		return nil, false
	}
	i := sort.Search(r.n, func(i int) bool { return r.at(i).rev > rev })
	events = make([]*cacheEvent, 0, r.n-i)
	for ; i < r.n; i++ {
		events = append(events, r.at(i))
	}
	return events, true
}
