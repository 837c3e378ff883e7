package nodelifecycle

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// limiter spaces out events to at most rate per second (a token bucket of
// one token); a rate of zero or less never delays.
type limiter struct {
	mu       sync.Mutex
	interval time.Duration
	clock    clock.Clock
	next     time.Time
}

func newLimiter(rate float64, clk clock.Clock) *limiter {
	l := &limiter{clock: clk}
	if rate > 0 {
		l.interval = time.Duration(float64(time.Second) / rate)
	}
	return l
}

// wait reports how long to wait before the next event may happen; a zero
// answer takes the slot.
func (l *limiter) wait() time.Duration {
	if l.interval == 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	if now.Before(l.next) {
		return l.next.Sub(now)
	}
	l.next = now.Add(l.interval)
	return 0
}
