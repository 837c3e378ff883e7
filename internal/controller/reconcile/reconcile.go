// Package reconcile drains a rate-limited work queue of object keys with a
// fixed number of workers, calling one reconcile function per key: the loop
// every level-triggered controller in skiff runs. A key is never handed to
// two workers at once (client-go's workqueue guarantees it), a failed key is
// retried with exponential back-off, and a key that succeeds is forgotten.
package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Func reconciles the object named by key ("namespace/name", or "name" for
// cluster-scoped objects). It reads desired and actual state from caches and
// acts on the difference; it must be safe to call again with the same key
// at any time. A non-nil error retries the key after a back-off.
type Func func(ctx context.Context, key string) error

// Queue is a work queue of keys and the function that reconciles them.
type Queue struct {
	name string
	fn   Func
	q    workqueue.TypedRateLimitingInterface[string]
	log  *slog.Logger
}

// New returns a queue named name (for logs and the workqueue_* metrics)
// that reconciles with fn.
// Retries back off from 5 ms to 60 s per key, as upstream controllers do.
func New(name string, fn Func) *Queue {
	rl := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 60*time.Second),
	)
	return &Queue{
		name: name,
		fn:   fn,
		q:    workqueue.NewTypedRateLimitingQueueWithConfig(rl, workqueue.TypedRateLimitingQueueConfig[string]{Name: name, MetricsProvider: MetricsProvider}),
		log:  slog.Default().With("controller", name),
	}
}

// Add queues key now.
func (q *Queue) Add(key string) { q.q.Add(key) }

// AddAfter queues key after d (a resync for time-based conditions).
func (q *Queue) AddAfter(key string, d time.Duration) { q.q.AddAfter(key, d) }

// Len is the number of keys waiting.
func (q *Queue) Len() int { return q.q.Len() }

// Enqueue queues the key of an informer object, including the tombstones a
// delete handler receives. Objects without metadata are ignored.
func (q *Queue) Enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	q.q.Add(key)
}

// Handler is an informer event handler that queues every added, updated
// and deleted object's own key.
func (q *Queue) Handler() cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    q.Enqueue,
		UpdateFunc: func(_, obj any) { q.Enqueue(obj) },
		DeleteFunc: q.Enqueue,
	}
}

// Run waits for the informers to sync, then runs workers until ctx ends. It
// returns after every worker has exited.
func (q *Queue) Run(ctx context.Context, workers int, synced ...cache.InformerSynced) error {
	defer q.q.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("%s: caches did not sync: %w", q.name, ctx.Err())
	}
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q.next(ctx) {
			}
		}()
	}
	<-ctx.Done()
	q.q.ShutDown()
	wg.Wait()
	return nil
}

func (q *Queue) next(ctx context.Context) bool {
	key, quit := q.q.Get()
	if quit {
		return false
	}
	defer q.q.Done(key)
	err := q.fn(ctx, key)
	switch {
	case err == nil:
		q.q.Forget(key)
	case ctx.Err() != nil:
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err):
		// The cache was behind the server; the informer event that is on
		// its way will bring the fresh state.
		q.log.Debug("retrying after stale read", "key", key, "err", err)
		q.q.AddRateLimited(key)
	default:
		q.log.Info("reconcile failed, retrying", "key", key, "err", err)
		q.q.AddRateLimited(key)
	}
	return true
}
