package storage

import (
	"sync"
	"weak"

	"k8s.io/apimachinery/pkg/runtime"
)

// SharedObject is the Object of a watch event that the watch cache sends
// to a watch that asked for it (ListOptions.SharedEncodings): the object
// as the cache holds it, read-only, and the cache of its serialized forms
// that every watcher of the same object shares. A server encodes the
// object once per wire form through Encodings and writes the same bytes to
// every watcher, instead of each watcher encoding its own copy.
type SharedObject struct {
	runtime.Object
	Encodings *Encodings
}

// Encodings caches the serialized forms of one object (as one watch event
// type, in one format: what a form is, the caller's key says). It lives as
// long as some watcher holds it: the watch cache keeps only a weak
// reference, so the bytes are freed once no watcher is writing them and
// made again by the next watcher that needs them.
type Encodings struct {
	mu sync.Mutex
	// first is the form most objects only ever need (no key until it is
	// used); more the others.
	first encodedForm
	more  []*encodedForm
}

type encodedForm struct {
	key  any
	once sync.Once
	data []byte
	err  error
}

// Get returns the form named key, made by encode the first time it is
// asked for; concurrent callers for the same key wait for that one call.
// key must be comparable and not nil. encode's error is kept and returned
// to every caller, as its bytes are. The bytes are shared: callers must
// not modify them.
func (e *Encodings) Get(key any, encode func() ([]byte, error)) ([]byte, error) {
	e.mu.Lock()
	f := e.formLocked(key)
	e.mu.Unlock()
	f.once.Do(func() { f.data, f.err = encode() })
	return f.data, f.err
}

func (e *Encodings) formLocked(key any) *encodedForm {
	switch e.first.key {
	case nil:
		e.first.key = key
		return &e.first
	case key:
		return &e.first
	}
	for _, f := range e.more {
		if f.key == key {
			return f
		}
	}
	f := &encodedForm{key: key}
	e.more = append(e.more, f)
	return f
}

// encodingsRef hands out the Encodings of one object: the same ones to
// every watcher while any of them holds them, new ones once the garbage
// collector has freed those. The cache keeps an encodingsRef beside each
// object it holds (in the tree and in the event ring), so that serialized
// forms cost memory only while they are being written.
type encodingsRef struct {
	mu sync.Mutex
	wp weak.Pointer[Encodings]
}

func (r *encodingsRef) get() *Encodings {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.wp.Value(); e != nil {
		return e
	}
	e := new(Encodings)
	r.wp = weak.Make(e)
	return e
}

// share wraps obj with the Encodings of ref.
func share(obj runtime.Object, ref *encodingsRef) runtime.Object {
	return &SharedObject{Object: obj, Encodings: ref.get()}
}
