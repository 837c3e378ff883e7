package residency

import (
	"runtime"
	"testing"
	"time"
)

// An interval without a collection frees; one in which collections ran
// on their own does not; the collection that freeing forces does not
// count as activity.
func TestTrimmer(t *testing.T) {
	var n uint64 // collections so far
	frees := 0
	tr := newTrimmer(func() uint64 { return n }, func() { n++; frees++ })
	for i, step := range []struct {
		collections uint64
		wantFree    bool
	}{{0, true}, {0, true}, {3, false}, {0, true}, {1, false}, {1, false}, {0, true}} {
		n += step.collections
		before := frees
		if got := tr.tick(); got != step.wantFree || (frees > before) != step.wantFree {
			t.Fatalf("tick %d after %d collections: freed %v (free called %d times), want %v", i, step.collections, got, frees-before, step.wantFree)
		}
	}
}

// gcCycles counts collections.
func TestGCCycles(t *testing.T) {
	before := gcCycles()
	runtime.GC()
	if after := gcCycles(); after <= before {
		t.Fatalf("gc cycles %d after a collection, %d before", after, before)
	}
}

// The process is quiet once a whole window used less than the limit, and
// not before a window's worth of samples.
func TestQuietWatch(t *testing.T) {
	q := quietWatch{window: 3, limit: 150 * time.Millisecond}
	ms := time.Millisecond
	var cpu time.Duration
	for i, step := range []struct {
		used time.Duration
		want bool
	}{
		{0, false}, {10 * ms, false}, {10 * ms, false}, // not a full window yet
		{10 * ms, true},   // 30 ms over the last 3 intervals
		{500 * ms, false}, // a burst
		{10 * ms, false}, {10 * ms, false},
		{10 * ms, true},                  // the burst left the window
		{60 * ms, true}, {60 * ms, true}, // 80, then 130 over the window
		{60 * ms, false}, // 180
	} {
		cpu += step.used
		if got := q.observe(cpu); got != step.want {
			t.Fatalf("sample %d (+%v): quiet %v, want %v", i, step.used, got, step.want)
		}
	}
	if cpuTime() <= 0 {
		t.Error("cpuTime: the test process has used no CPU")
	}
}
