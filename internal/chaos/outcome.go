package chaos

import (
	"errors"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// outcome is what the answer to a request says about whether it took
// effect.
type outcome int

const (
	// applied: the server answered 2xx.
	applied outcome = iota
	// refused: the request did not take effect. The server answered with
	// a 4xx Status, or no server took the connection.
	refused
	// indeterminate: the answer was lost (the connection dropped, the
	// client gave up) or is a 5xx: the request may have taken effect.
	indeterminate
)

func (o outcome) String() string {
	switch o {
	case applied:
		return "acknowledged"
	case refused:
		return "refused"
	}
	return "indeterminate"
}

// classify tells what err, a request's error, says about its effect.
func classify(err error) outcome {
	if err == nil {
		return applied
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		if code := st.Status().Code; code >= 500 || code == 0 {
			return indeterminate
		}
		return refused
	}
	if utilnet.IsConnectionRefused(err) {
		return refused
	}
	return indeterminate
}

// timeline records when the server was killed and when it was ready
// again.
type timeline struct {
	start time.Time

	mu    sync.Mutex
	kills []kill
}

// kill is one kill -9: the signal was sent at start, the process was gone
// at end, and the restarted server was ready at ready.
type kill struct {
	start, end, ready time.Time
}

func newTimeline() *timeline { return &timeline{start: time.Now()} }

func (tl *timeline) killing() {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.kills = append(tl.kills, kill{start: time.Now()})
}

func (tl *timeline) killed() {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.kills[len(tl.kills)-1].end = time.Now()
}

func (tl *timeline) ready() {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.kills[len(tl.kills)-1].ready = time.Now()
}

// killDuring returns the first kill that overlapped a request, in flight
// from call to ret: a request that failed because of it took effect, if
// at all, before the process was gone (k.end), and cannot take effect
// later. (A request sent after the signal, to a process not yet gone,
// counts too.)
func (tl *timeline) killDuring(call, ret time.Time) (kill, bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, k := range tl.kills {
		end := k.end
		if end.IsZero() {
			end = ret // still dying
		}
		if !k.start.After(ret) && !end.Before(call) {
			return k, true
		}
	}
	return kill{}, false
}

// readyTimes returns how long each restart took, from the kill to ready.
func (tl *timeline) readyTimes() []time.Duration {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var out []time.Duration
	for _, k := range tl.kills {
		if !k.ready.IsZero() {
			out = append(out, k.ready.Sub(k.start))
		}
	}
	return out
}
