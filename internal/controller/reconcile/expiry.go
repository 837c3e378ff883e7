package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
)

// Expiry is the sync of a cleaner: a controller that deletes each object
// when it falls due (CSRs, PodCertificateRequests, bootstrap tokens).
// An object not yet due is requeued for the moment it is, so nothing
// polls.
type Expiry[T metav1.Object] struct {
	// What names the objects in errors and the log ("csr").
	What  string
	Log   *slog.Logger
	Clock clock.PassiveClock
	// Queue is the queue whose Func is Sync.
	Queue *Queue
	// Get reads the object of key from the informer's cache.
	Get func(key string) (T, error)
	// DueAt is when obj may be deleted; false: never.
	DueAt func(obj T) (time.Time, bool)
	// Delete deletes obj with the preconditions given.
	Delete func(ctx context.Context, obj T, pre *metav1.Preconditions) error
}

// Sync deletes key's object if it is due, or requeues key for when it
// will be. The delete is conditional on the UID and resourceVersion the
// cache saw: if the object changed since (409), the retry judges it anew.
func (e *Expiry[T]) Sync(ctx context.Context, key string) error {
	obj, err := e.Get(key)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", e.What, key, err)
	}
	if obj.GetDeletionTimestamp() != nil {
		return nil
	}
	at, ok := e.DueAt(obj)
	if !ok {
		return nil
	}
	if left := at.Sub(e.Clock.Now()); left > 0 {
		e.Queue.AddAfter(key, left)
		return nil
	}
	uid, rv := obj.GetUID(), obj.GetResourceVersion()
	err = e.Delete(ctx, obj, &metav1.Preconditions{UID: &uid, ResourceVersion: &rv})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("%s %s: delete: %w", e.What, key, err)
	}
	e.Log.Info("deleted "+e.What, "key", key, "due", at.UTC().Format(time.RFC3339))
	return nil
}
