package storage

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// InitialEventsEndAnnotation marks the BOOKMARK that ends a watch's
// initial events (SendInitialEvents).
const InitialEventsEndAnnotation = "k8s.io/initial-events-end"

// change is one write to a key as both watch implementations see it.
// For Added and Modified, obj is the new object and prev the one before
// (nil for Added). For Deleted, obj is the last stored object with the
// delete's revision as resourceVersion and prev is nil.
type change struct {
	typ  watch.EventType
	obj  runtime.Object
	prev runtime.Object
	// prevAtRev returns prev with the change's revision as its
	// resourceVersion: the object of a DELETED sent because the object
	// stopped matching a predicate.
	prevAtRev func() runtime.Object
}

// matches reports whether pred selects obj; an object whose attributes
// cannot be read matches nothing.
func matches(pred Predicate, obj runtime.Object) bool {
	if obj == nil {
		return false
	}
	ok, err := pred.Matches(obj)
	return err == nil && ok
}

// filter turns a change into the event a watcher with pred sees, if any:
// an object that starts matching arrives as ADDED and one that stops as
// DELETED.
func (c change) filter(pred Predicate) (watch.Event, bool) {
	if pred.Empty() {
		return watch.Event{Type: c.typ, Object: c.obj}, true
	}
	switch c.typ {
	case watch.Added, watch.Deleted:
		if matches(pred, c.obj) {
			return watch.Event{Type: c.typ, Object: c.obj}, true
		}
		return watch.Event{}, false
	case watch.Modified:
		cur, old := matches(pred, c.obj), matches(pred, c.prev)
		switch {
		case cur && old:
			return watch.Event{Type: watch.Modified, Object: c.obj}, true
		case cur:
			return watch.Event{Type: watch.Added, Object: c.obj}, true
		case old:
			return watch.Event{Type: watch.Deleted, Object: c.prevAtRev()}, true
		}
	}
	return watch.Event{}, false
}

// bookmarkObject returns an empty object of the resource with only its
// kind and resourceVersion set (and, for the end of initial events, the
// annotation that says so).
func bookmarkObject(cfg Config, rev int64, initialEventsEnd bool) runtime.Object {
	obj := cfg.NewFunc()
	obj.GetObjectKind().SetGroupVersionKind(cfg.GVK)
	if m, err := meta.Accessor(obj); err == nil {
		m.SetResourceVersion(formatRV(rev))
		if initialEventsEnd {
			m.SetAnnotations(map[string]string{InitialEventsEndAnnotation: "true"})
		}
	}
	return obj
}

// errorEvent is the ERROR event that ends a watch that failed: 410 Gone
// for compaction, 500 otherwise.
func errorEvent(err error) watch.Event {
	if err == nil {
		err = fmt.Errorf("watch failed")
	}
	var st *apierrors.StatusError
	switch {
	case errors.Is(err, ErrExpired):
		st = apierrors.NewResourceExpired(err.Error())
	default:
		st = apierrors.NewInternalError(err)
	}
	status := st.ErrStatus
	return watch.Event{Type: watch.Error, Object: &status}
}

// checkPredicate rejects a selecting predicate without GetAttrs, which
// Predicate.Matches would otherwise dereference.
func checkPredicate(p Predicate) error {
	if !p.Empty() && p.GetAttrs == nil {
		return errors.New("predicate with a selector but no GetAttrs")
	}
	return nil
}
