package encryption

import (
	"sync/atomic"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Dynamic holds the Set in force and lets it be replaced while the server
// runs (a reloaded configuration, a rotated key): the transformers it
// hands out look the Set up on every call, so a Store built once follows
// every replacement without a restart.
type Dynamic struct {
	set atomic.Pointer[Set]
}

// NewDynamic returns a Dynamic holding s.
func NewDynamic(s *Set) *Dynamic {
	d := &Dynamic{}
	d.set.Store(s)
	return d
}

// Load returns the Set in force.
func (d *Dynamic) Load() *Set { return d.set.Load() }

// Store puts s in force. Values written from then on use its keys; a
// write that looked its transformer up just before may still use the
// previous Set's.
func (d *Dynamic) Store(s *Set) { d.set.Store(s) }

// For returns the transformer of one resource under whatever Set is in
// force at each call.
func (d *Dynamic) For(gr schema.GroupResource) Transformer {
	return resourceTransformer{d: d, gr: gr}
}

type resourceTransformer struct {
	d  *Dynamic
	gr schema.GroupResource
}

func (t resourceTransformer) TransformToStorage(data []byte) ([]byte, error) {
	return t.d.Load().For(t.gr).TransformToStorage(data)
}

func (t resourceTransformer) TransformFromStorage(data []byte) ([]byte, bool, error) {
	return t.d.Load().For(t.gr).TransformFromStorage(data)
}
