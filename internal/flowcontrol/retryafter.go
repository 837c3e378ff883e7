package flowcontrol

import (
	"sync"
	"time"
)

// maxRetryAfter is the longest Retry-After a rejected client is told, in
// seconds (upstream's).
const maxRetryAfter = 32

// retryAfter is the Retry-After one level's rejected requests are told,
// adapted to how many it rejects, the way TCP adapts its window (the
// behaviour of upstream's dropped-requests tracker): it starts at one
// second; when at least three times that many requests were rejected in
// the last that-many seconds it doubles, at most once per that many
// seconds and up to 32 s; when fewer than that many were, it shrinks by
// one second. It is reconsidered on the first rejection of each second.
type retryAfter struct {
	mu        sync.Mutex
	seconds   int64
	raisedAt  int64 // unix second of the last doubling
	current   int64 // unix second of the latest rejection
	perSecond [maxRetryAfter + 1]struct{ at, n int64 }
}

func newRetryAfter() *retryAfter { return &retryAfter{seconds: 1} }

// reject records a rejection at now and returns the Retry-After to send.
func (ra *retryAfter) reject(now time.Time) time.Duration {
	sec := now.Unix()
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if sec != ra.current {
		ra.reconsider(sec)
		ra.current = sec
	}
	slot := &ra.perSecond[sec%int64(len(ra.perSecond))]
	if slot.at != sec {
		slot.at, slot.n = sec, 0
	}
	slot.n++
	return time.Duration(ra.seconds) * time.Second
}

// reconsider adapts seconds to the rejections of the seconds before sec.
func (ra *retryAfter) reconsider(sec int64) {
	var rejected int64
	for _, s := range ra.perSecond {
		if s.at < sec && sec-s.at <= ra.seconds {
			rejected += s.n
		}
	}
	switch {
	case sec-ra.raisedAt >= ra.seconds && rejected >= 3*ra.seconds:
		ra.seconds = min(2*ra.seconds, maxRetryAfter)
		ra.raisedAt = sec
	case rejected < ra.seconds && ra.seconds > 1:
		ra.seconds--
	}
}
