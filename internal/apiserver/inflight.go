package apiserver

import (
	"net/http"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// admitter decides when a request that passed authorization runs: at
// once, after waiting its turn, or not at all. admit returns the func to
// call when the request ends, or the error to answer with (429). It may
// set response headers on w. Two admitters exist: API Priority and
// Fairness (priorityAndFairness, the default) and, when that is off,
// upstream's max-in-flight bounds (inFlight).
type admitter interface {
	admit(w http.ResponseWriter, r *http.Request, info requestInfo, u *User) (release func(), err error)
}

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

func (l *inFlight) admit(_ http.ResponseWriter, _ *http.Request, info requestInfo, u *User) (release func(), err error) {
	return l.acquire(info, u)
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
		return noRelease, nil
	}
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	default:
	}
	if u != nil && slices.Contains(u.Groups, "system:masters") {
		return noRelease, nil
	}
	return nil, overloaded()
}

// overloaded is the answer past a bound: upstream's message and a retry
// after one second (upstream writes it as text, skiff as a Status).
func overloaded() error {
	return apierrors.NewTooManyRequests("Too many requests, please try again later.", 1)
}

// noRelease is the release of a request that holds nothing.
func noRelease() {}
