package persistentvolume

import (
	"strconv"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// written remembers the objects the binder wrote until its informer has
// caught up with them. Binding writes four objects in a row and each write
// comes back as an informer event, in any order; without this, a sync
// triggered by the first event would see the other objects as they were
// before and try to bind them again (upstream keeps its own caches of
// volumes and claims for the same reason). It only ever prefers an object
// the API server returned over an older cached one: it is a read-your-writes
// overlay, not a second source of truth, and entries go as soon as the
// informer has the same or a newer resourceVersion.
type written[T metav1.Object] struct {
	mu sync.Mutex
	m  map[string]T
}

func newWritten[T metav1.Object]() *written[T] {
	return &written[T]{m: map[string]T{}}
}

// remember records obj, as returned by a write, under key.
func (w *written[T]) remember(key string, obj T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.m[key] = obj
}

// forget drops key (the object is gone).
func (w *written[T]) forget(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}

// newer returns the object last written under key if it is newer than
// cached, the informer's copy, and cached otherwise (then forgetting the
// written one, which the informer has caught up with).
func (w *written[T]) newer(key string, cached T) T {
	w.mu.Lock()
	defer w.mu.Unlock()
	mine, ok := w.m[key]
	if !ok {
		return cached
	}
	if olderThan(cached, mine) {
		return mine
	}
	delete(w.m, key)
	return cached
}

// olderThan reports whether a's resourceVersion is below b's. Both must be
// numbers (skiff's and etcd's are); anything else is "not older", so the
// informer's copy wins.
func olderThan(a, b metav1.Object) bool {
	ra, err := strconv.ParseUint(a.GetResourceVersion(), 10, 64)
	if err != nil {
		return false
	}
	rb, err := strconv.ParseUint(b.GetResourceVersion(), 10, 64)
	if err != nil {
		return false
	}
	return ra < rb
}
