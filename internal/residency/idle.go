package residency

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// IdleInterval is how often TrimWhileIdle looks whether the process is idle.
const IdleInterval = time.Minute

// TrimWhileIdle keeps an idle process's heap at what it holds live: every
// interval in which no garbage collection ran, it collects and returns the
// free heap to the operating system (debug.FreeOSMemory).
//
// Between collections Go lets the heap grow to twice what survived the
// last one (GOGC=100), and keeps the freed pages for the next cycle: an
// idle server that allocates a little each second sits at the top of that
// band, some 20 MiB above its live heap, for minutes. A minute without a
// collection means the process allocated less than its live heap in that
// minute, so one forced collection a minute costs little (an idle server's
// 19 MB live heap: 35-175 ms of CPU, 0.1 % of a core); under load
// collections run on their own and nothing is forced. It returns when ctx
// ends.
func TrimWhileIdle(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	tr := newTrimmer(gcCycles, debug.FreeOSMemory)
	for {
		select {
		case <-t.C:
			tr.tick()
		case <-ctx.Done():
			return
		}
	}
}

// trimmer frees when no collection ran since its last tick.
type trimmer struct {
	last   uint64
	cycles func() uint64
	free   func()
}

func newTrimmer(cycles func() uint64, free func()) *trimmer {
	return &trimmer{last: cycles(), cycles: cycles, free: free}
}

// tick frees if the process was idle since the last tick, and says
// whether it did. The collection that freeing forces is not activity.
func (t *trimmer) tick() bool {
	if n := t.cycles(); n != t.last {
		t.last = n
		return false
	}
	t.free()
	t.last = t.cycles()
	return true
}

// gcCycles is the number of completed garbage collections.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
