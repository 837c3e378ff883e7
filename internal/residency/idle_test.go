package residency

import (
	"runtime"
	"testing"
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
