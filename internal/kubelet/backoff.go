package kubelet

import (
	"sync"
	"time"
)

// backoff is upstream's crash-loop back-off: after a container's first
// exit it restarts at once; each later restart waits twice as long as the
// one before (10 s, 20 s, ... up to 5 min), counted from the exit. A
// container that ran for longer than twice the maximum (10 min) before
// exiting starts over from the initial delay.
type backoff struct {
	initial, max time.Duration
	now          func() time.Time

	mu      sync.Mutex
	entries map[string]*backoffEntry
}

type backoffEntry struct {
	delay      time.Duration
	lastUpdate time.Time // the exit the delay was computed for
}

func newBackoff(initial, max time.Duration) *backoff {
	return &backoff{initial: initial, max: max, now: time.Now, entries: map[string]*backoffEntry{}}
}

// remaining is how long a container that exited at finished must still
// wait before its restart; zero when it may restart now.
func (b *backoff) remaining(key string, finished time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entries[key]
	if e == nil || b.expired(e, finished) {
		return 0
	}
	left := finished.Add(e.delay).Sub(b.now())
	if left < 0 {
		return 0
	}
	return left
}

// next records a restart after the exit at finished (the instance started
// at started) and doubles the delay for the next one.
func (b *backoff) next(key string, finished, started time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entries[key]
	switch {
	case e == nil || b.expired(e, finished) || finished.Sub(started) > 2*b.max:
		b.entries[key] = &backoffEntry{delay: b.initial, lastUpdate: finished}
	case !finished.Equal(e.lastUpdate):
		e.delay *= 2
		if e.delay > b.max {
			e.delay = b.max
		}
		e.lastUpdate = finished
	}
}

// current is the delay the container waits now (for messages).
func (b *backoff) current(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e := b.entries[key]; e != nil {
		return e.delay
	}
	return 0
}

// forget drops every entry whose key starts with prefix (a removed pod).
func (b *backoff) forget(prefix string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.entries {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			delete(b.entries, k)
		}
	}
}

func (b *backoff) expired(e *backoffEntry, event time.Time) bool {
	return event.Sub(e.lastUpdate) > 2*b.max
}
