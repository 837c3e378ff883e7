package apiserver

import (
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Upstream's --max-requests-inflight and --max-mutating-requests-inflight
// defaults.
const (
	DefaultMaxRequestsInFlight         = 400
	DefaultMaxMutatingRequestsInFlight = 200
)

// inFlight bounds the requests served at once, reads and writes apart,
// as upstream's max-in-flight filter does: past the bound a request is
// answered 429 with Retry-After at once, not queued. Long-running
// requests are not counted, and members of system:masters (the admin and
// the server's own components) are served even past the bound: they must
// always get an answer.
type inFlight struct {
	reads, writes chan struct{} // nil: no bound
}

func newInFlight(reads, writes int) *inFlight {
	l := &inFlight{}
	if reads > 0 {
		l.reads = make(chan struct{}, reads)
	}
	if writes > 0 {
		l.writes = make(chan struct{}, writes)
	}
	return l
}

// acquire takes a place for the request and returns its release, or an
// error (429) when the request's kind is at its bound.
func (l *inFlight) acquire(info requestInfo, u *User) (release func(), err error) {
	sem := l.writes
	switch info.verb {
	case "get", "list", "watch", "":
		sem = l.reads
	}
	if sem == nil || longRunning(info) {
		return func() {}, nil
	}
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	default:
	}
	if u != nil && slices.Contains(u.Groups, "system:masters") {
		return func() {}, nil
	}
	return nil, overloaded()
}

// overloaded is the answer past a bound: upstream's message and a retry
// after one second (upstream writes it as text, skiff as a Status).
func overloaded() error {
	return apierrors.NewTooManyRequests("Too many requests, please try again later.", 1)
}
