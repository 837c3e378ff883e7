package storage

import "testing"

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
