package podset

import (
	"sync"
	"time"
)

// ExpectationsTimeout is how long a controller waits for its informer to
// report its own creates and deletes before it acts again regardless
// (upstream's ExpectationsTimeout): a watch event that never arrives must
// not stall an owner forever.
const ExpectationsTimeout = 5 * time.Minute

// Expectations tracks, per owner key, the pod creations and deletions a
// controller has issued but its informer has not reported yet. While a key
// has outstanding expectations the owner's reconcile computes status but
// does not create or delete, so a cache that lags behind the controller's
// own writes never makes it create or delete twice. Deletions are tracked
// by pod key so that the update that sets deletionTimestamp and the final
// delete event count once. Safe for concurrent use; the zero value is not
// (use NewExpectations).
type Expectations struct {
	mu sync.Mutex
	m  map[string]*expectation
}

type expectation struct {
	adds int
	dels map[string]struct{}
	at   time.Time
}

// NewExpectations returns an empty tracker.
func NewExpectations() *Expectations { return &Expectations{m: map[string]*expectation{}} }

// Satisfied reports whether the controller may act on key at now: no
// outstanding expectations, or they are older than ExpectationsTimeout.
func (e *Expectations) Satisfied(key string, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok || (x.adds <= 0 && len(x.dels) == 0) {
		return true
	}
	return now.Sub(x.at) > ExpectationsTimeout
}

// Expect records at now that n creations and the deletion of podKeys are
// on their way for key, replacing whatever was expected before.
func (e *Expectations) Expect(key string, n int, podKeys []string, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{adds: n, dels: make(map[string]struct{}, len(podKeys)), at: now}
	for _, k := range podKeys {
		x.dels[k] = struct{}{}
	}
	e.m[key] = x
}

// CreationObserved lowers the expected creations of key by one (a create
// seen by the informer, or one that failed or was skipped).
func (e *Expectations) CreationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok && x.adds > 0 {
		x.adds--
	}
}

// DeletionObserved marks the deletion of podKey under key as seen. A pod
// key not expected is ignored, so repeated events count once.
func (e *Expectations) DeletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		delete(x.dels, podKey)
	}
}

// Forget drops key's expectations (the owner is gone).
func (e *Expectations) Forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
