package daemonset

import (
	"sync"
	"time"
)

// expectationsTimeout is how long the controller waits for the informer to
// report its own creates and deletes before acting again regardless
// (upstream's ExpectationsTimeout).
const expectationsTimeout = 5 * time.Minute

// expectations tracks, per DaemonSet key, the pod creations and deletions issued
// but not yet seen by the informer. While a key has outstanding
// expectations the DaemonSet's reconcile updates status but neither creates nor
// deletes pods, so a lagging cache never makes it act twice. Safe for
// concurrent use.
type expectations struct {
	mu sync.Mutex
	m  map[string]*expectation
}

type expectation struct {
	adds int
	dels map[string]struct{}
	at   time.Time
}

func newExpectations() *expectations { return &expectations{m: map[string]*expectation{}} }

// satisfied reports whether key has no outstanding expectations (or they
// are older than expectationsTimeout at now).
func (e *expectations) satisfied(key string, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok || (x.adds <= 0 && len(x.dels) == 0) {
		return true
	}
	return now.Sub(x.at) > expectationsTimeout
}

// expect records n creations and the deletion of podKeys for key,
// replacing earlier expectations.
func (e *expectations) expect(key string, n int, podKeys []string, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{adds: n, dels: make(map[string]struct{}, len(podKeys)), at: now}
	for _, k := range podKeys {
		x.dels[k] = struct{}{}
	}
	e.m[key] = x
}

// creationObserved lowers key's expected creations by one.
func (e *expectations) creationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok && x.adds > 0 {
		x.adds--
	}
}

// deletionObserved marks podKey's deletion under key as seen; repeated
// calls count once.
func (e *expectations) deletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		delete(x.dels, podKey)
	}
}

// forget drops key's expectations.
func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
