package storage

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// check returns ErrConflict (wrapped) unless obj satisfies p. A nil p
// always holds.
func (p *Preconditions) check(key string, obj runtime.Object) error {
	if p == nil {
		return nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if p.UID != nil && *p.UID != string(m.GetUID()) {
		return fmt.Errorf("%s: precondition failed: uid in precondition %q, uid in object %q: %w",
			key, *p.UID, m.GetUID(), ErrConflict)
	}
	if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
		return fmt.Errorf("%s: precondition failed: resourceVersion in precondition %q, resourceVersion in object %q: %w",
			key, *p.ResourceVersion, m.GetResourceVersion(), ErrConflict)
	}
	return nil
}
