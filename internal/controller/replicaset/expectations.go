package replicaset

import (
	"sync"
	"time"
)

// expectationsTimeout is how long a controller waits for the informer to
// report its own creates and deletes before it acts again regardless
// (upstream's ExpectationsTimeout): a watch event that never arrives must
// not stall a ReplicaSet forever.
const expectationsTimeout = 5 * time.Minute

// expectations tracks, per ReplicaSet key, the pod creations and deletions
// the controller has issued but the informer has not reported yet. While a
// key has outstanding expectations its reconcile computes status but does
// not create or delete, so a cache that lags behind the controller's own
// writes never makes it create or delete twice. Deletions are tracked by
// pod key so that the update that sets deletionTimestamp and the final
// delete event count once. Safe for concurrent use.
type expectations struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]*expectation
}

type expectation struct {
	adds int
	dels map[string]struct{}
	at   time.Time
}

func newExpectations(now func() time.Time) *expectations {
	if now == nil {
		now = time.Now
	}
	return &expectations{now: now, m: map[string]*expectation{}}
}

// satisfied reports whether the controller may act on key: no outstanding
// expectations, or they are older than expectationsTimeout.
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	if x.adds <= 0 && len(x.dels) == 0 {
		return true
	}
	return e.now().Sub(x.at) > expectationsTimeout
}

// expect records that n creations and the deletion of podKeys are on their
// way for key, replacing whatever was expected before.
func (e *expectations) expect(key string, n int, podKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{adds: n, dels: make(map[string]struct{}, len(podKeys)), at: e.now()}
	for _, k := range podKeys {
		x.dels[k] = struct{}{}
	}
	e.m[key] = x
}

// creationObserved lowers the expected creations of key by one (a create
// seen by the informer, or one that failed or was skipped).
func (e *expectations) creationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok && x.adds > 0 {
		x.adds--
	}
}

// deletionObserved marks the deletion of podKey under key as seen. A pod
// key not expected is ignored, so repeated events count once.
func (e *expectations) deletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		delete(x.dels, podKey)
	}
}

// forget drops key's expectations (the ReplicaSet is gone).
func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
