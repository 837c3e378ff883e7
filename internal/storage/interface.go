// Package storage is the API server's only way to state: a typed,
// per-resource object store on etcd with optimistic concurrency, and a watch
// cache in front of it that serves lists and watches from memory.
//
// Keys are etcd keys, "/registry/<resource>/<namespace>/<name>" for
// namespaced objects and "/registry/<resource>/<name>" otherwise (upstream's
// layout). Values are the objects in Kubernetes protobuf encoding. An
// object's resourceVersion is the etcd mod revision of its key; a list's is
// the etcd revision it was read at.
//
// Two implementations satisfy Interface: Store (straight to etcd) and Cacher
// (a Store behind a watch cache). Both pass the conformance suite in
// storagetest, against an embedded etcd and an external cluster.
package storage

import (
	"context"
	"errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// Sentinel errors. Callers branch on them with errors.Is; the API server
// turns them into Status objects (404, 409, 410, 504).
var (
	// ErrNotFound: no object at the key.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: Create found an object at the key.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: a precondition (resourceVersion or uid) did not hold.
	ErrConflict = errors.New("conflict")
	// ErrExpired: the requested resourceVersion (or continue token) is
	// older than what etcd or the watch cache still holds (410 Gone).
	ErrExpired = errors.New("resource version too old")
	// ErrTimeout: the watch cache did not catch up with a requested
	// resourceVersion in time (504 with retry).
	ErrTimeout = errors.New("timed out waiting for resource version")
	// ErrInvalidContinue: a continue token that does not decode or does
	// not belong to this resource (400).
	ErrInvalidContinue = errors.New("invalid continue token")
)

// UpdateFunc computes the new object from the current one. It may mutate
// and return current. Returning an error aborts the update with that error.
// It may be called more than once when writes race.
type UpdateFunc func(current runtime.Object) (runtime.Object, error)

// Preconditions guard a delete or update: each set field must match the
// stored object, or the call fails with ErrConflict.
type Preconditions struct {
	UID             *string
	ResourceVersion *string
}

// Predicate selects objects for lists and watches.
type Predicate struct {
	Label labels.Selector // nil or Everything() means all
	Field fields.Selector // nil or Everything() means all
	// GetAttrs returns the object's labels and field-selector set. Needed
	// when Label or Field is not empty.
	GetAttrs func(obj runtime.Object) (labels.Set, fields.Set, error)
}

// Empty reports whether p selects everything.
func (p Predicate) Empty() bool {
	return (p.Label == nil || p.Label.Empty()) && (p.Field == nil || p.Field.Empty())
}

// Matches reports whether obj is selected by p.
func (p Predicate) Matches(obj runtime.Object) (bool, error) {
	if p.Empty() {
		return true, nil
	}
	if p.GetAttrs == nil {
		return false, errors.New("predicate with selectors has no GetAttrs")
	}
	ls, fs, err := p.GetAttrs(obj)
	if err != nil {
		return false, err
	}
	if p.Label != nil && !p.Label.Matches(ls) {
		return false, nil
	}
	if p.Field != nil && !p.Field.Matches(fs) {
		return false, nil
	}
	return true, nil
}

// ListOptions are a list's or watch's parameters, as the client sent them.
type ListOptions struct {
	// ResourceVersion and ResourceVersionMatch have upstream's meaning:
	// for lists "" is a consistent (most recent) read, "0" any version
	// (from the cache), "N" with NotOlderThan (the default) at least N, and
	// with Exact exactly N. For watches, "" and "0" start with synthetic
	// ADDED events for the current state, "N" streams events after N.
	ResourceVersion      string
	ResourceVersionMatch metav1.ResourceVersionMatch
	Predicate            Predicate
	// Limit and Continue paginate a list (0 = no limit).
	Limit    int64
	Continue string
	// AllowWatchBookmarks asks a watch for periodic BOOKMARK events
	// carrying only a resourceVersion.
	AllowWatchBookmarks bool
	// SendInitialEvents asks a watch for the current state as ADDED events
	// followed by a BOOKMARK annotated "k8s.io/initial-events-end": "true"
	// (streaming lists).
	SendInitialEvents *bool
	// SharedEncodings asks a watch served from the watch cache to send
	// objects as *SharedObject, with the serialized forms every watcher
	// of the same object shares. Watches that cannot share (served from
	// etcd) send plain objects; bookmarks and errors are always plain.
	SharedEncodings bool
}

// Interface is a store of the objects of one resource. Objects passed in
// and out are of the resource's Go type; lists are its list type. Objects
// returned by List and Watch may be shared with the watch cache: callers
// must treat them as read-only (copy before mutating).
type Interface interface {
	// Create stores obj at key if the key is free, and fills out with the
	// stored object (resourceVersion set). ttl > 0 makes the object expire
	// after ttl seconds (events). Fails with ErrAlreadyExists.
	Create(ctx context.Context, key string, obj, out runtime.Object, ttl int64) error

	// Get reads the object at key into out. resourceVersion "" reads the
	// latest; "0" may read from the cache; "N" reads at least N. Fails with
	// ErrNotFound.
	Get(ctx context.Context, key string, resourceVersion string, out runtime.Object) error

	// GuaranteedUpdate reads key, calls tryUpdate with a private copy of
	// the current object and writes the result with compare-and-swap on the
	// key's mod revision, retrying from a fresh read when the write races.
	// preconditions are checked against each read. If the result encodes to
	// the same bytes as the stored object, nothing is written and out gets
	// the stored object. out may be nil when the caller does not need the
	// result. With ignoreNotFound, a missing key gives tryUpdate a zero
	// object (create-on-update); without it, ErrNotFound.
	GuaranteedUpdate(ctx context.Context, key string, out runtime.Object, ignoreNotFound bool,
		preconditions *Preconditions, tryUpdate UpdateFunc) error

	// Delete removes the object at key if preconditions hold (and check, if
	// not nil, returns nil for the current object), with compare-and-swap on
	// its mod revision, and fills out with the object as it was last stored.
	// Fails with ErrNotFound or ErrConflict.
	Delete(ctx context.Context, key string, out runtime.Object, preconditions *Preconditions,
		check func(current runtime.Object) error) error

	// List reads the objects under prefix (a key ending in "/") into
	// listObj, sorted by key, honouring opts: resourceVersion semantics,
	// predicate, limit and continue. It sets the list's resourceVersion,
	// continue token and remainingItemCount (when known).
	List(ctx context.Context, prefix string, opts ListOptions, listObj runtime.Object) error

	// Watch streams changes under prefix (a key ending in "/", or a single
	// key) after opts.ResourceVersion, filtered by opts.Predicate: an
	// object that stops matching arrives as DELETED, one that starts
	// matching as ADDED. Fails with ErrExpired when the version is older
	// than the oldest event held. The watch ends when ctx ends or Stop is
	// called; a watcher that falls too far behind is ended by the store
	// (its channel closes) and must re-watch, as with upstream.
	Watch(ctx context.Context, prefix string, opts ListOptions) (watch.Interface, error)

	// CurrentResourceVersion returns etcd's current revision.
	CurrentResourceVersion(ctx context.Context) (uint64, error)
}
