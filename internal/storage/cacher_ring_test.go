package storage

import (
	"testing"
	"time"
)

// TestEventRingGrowsToItsSize pushes more events than the ring holds and
// checks that it grows from a small buffer, keeps the newest size events
// in order, and reports the evicted ones as gone.
func TestEventRingGrowsToItsSize(t *testing.T) {
	const size = 40
	r := newEventRing(size)
	r.reset(100)
	if len(r.buf) > initialRingCap {
		t.Fatalf("a new ring allocated %d slots, want at most %d", len(r.buf), initialRingCap)
	}
	for rev := int64(101); rev <= 100+size; rev++ {
		r.push(&cacheEvent{rev: rev})
	}
	if r.n != size || len(r.buf) != size {
		t.Fatalf("after %d pushes: %d events in %d slots, want %d in %d", size, r.n, len(r.buf), size, size)
	}
	events, ok := r.since(100)
	if !ok || len(events) != size {
		t.Fatalf("since(100) = %d events, ok=%v; want %d, true", len(events), ok, size)
	}
	for i, e := range events {
		if e.rev != int64(101+i) {
			t.Fatalf("event %d has rev %d, want %d", i, e.rev, 101+i)
		}
	}
	// Ten more evict the ten oldest; the buffer stays at size.
	for rev := int64(101 + size); rev < 111+size; rev++ {
		r.push(&cacheEvent{rev: rev})
	}
	if len(r.buf) != size {
		t.Errorf("the buffer grew past size: %d", len(r.buf))
	}
	if _, ok := r.since(105); ok {
		t.Error("since(105) succeeded although events up to 110 were evicted")
	}
	events, ok = r.since(110)
	if !ok || len(events) != size || events[0].rev != 111 || events[size-1].rev != 110+size {
		t.Errorf("since(110): ok=%v, %d events", ok, len(events))
	}
}

// TestEventRingKeepsAWindowOfTime checks that events older than
// ringRetention are dropped once the ring holds more than ringMinEvents,
// and that a watch from before them is then refused.
func TestEventRingKeepsAWindowOfTime(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newEventRing(4096)
	r.now = func() time.Time { return now }
	r.reset(0)
	for rev := int64(1); rev <= 150; rev++ {
		r.push(&cacheEvent{rev: rev})
	}
	now = now.Add(ringRetention - time.Second)
	r.push(&cacheEvent{rev: 151})
	if r.n != 151 {
		t.Fatalf("within the window: %d events kept, want 151", r.n)
	}
	now = now.Add(2 * time.Second)
	r.push(&cacheEvent{rev: 152})
	if r.n != ringMinEvents {
		t.Fatalf("past the window: %d events kept, want %d", r.n, ringMinEvents)
	}
	if _, ok := r.since(10); ok {
		t.Error("since(10) succeeded although its events were dropped")
	}
	events, ok := r.since(52)
	if !ok || len(events) != ringMinEvents || events[0].rev != 53 {
		t.Errorf("since(52): ok=%v, %d events", ok, len(events))
	}
}
