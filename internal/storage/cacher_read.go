package storage

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Create implements Interface on the Store.
func (c *Cacher) Create(ctx context.Context, key string, obj, out runtime.Object, ttl int64) error {
	return c.store.Create(ctx, key, obj, out, ttl)
}

// GuaranteedUpdate implements Interface on the Store.
func (c *Cacher) GuaranteedUpdate(ctx context.Context, key string, out runtime.Object, ignoreNotFound bool,
	preconditions *Preconditions, tryUpdate UpdateFunc) error {
	var hint runtime.Object
	if c.isReady() && c.covers(key) {
		c.mu.Lock()
		if e, ok := c.tree.Get(&cacheEntry{key: key}); ok {
			hint = e.obj
		}
		c.mu.Unlock()
	}
	return c.store.guaranteedUpdate(ctx, key, out, ignoreNotFound, preconditions, tryUpdate, hint)
}

// Delete implements Interface on the Store.
func (c *Cacher) Delete(ctx context.Context, key string, out runtime.Object, preconditions *Preconditions,
	check func(current runtime.Object) error) error {
	return c.store.Delete(ctx, key, out, preconditions, check)
}

// CurrentResourceVersion implements Interface on the Store.
func (c *Cacher) CurrentResourceVersion(ctx context.Context) (uint64, error) {
	return c.store.CurrentResourceVersion(ctx)
}

// Get implements Interface: "" reads etcd; "0" reads the cache; "N" reads
// the cache once it has reached N, or etcd when it does not in time.
func (c *Cacher) Get(ctx context.Context, key string, resourceVersion string, out runtime.Object) error {
	if resourceVersion == "" || !c.isReady() || !c.covers(key) {
		return c.store.Get(ctx, key, resourceVersion, out)
	}
	rev, err := parseRV(resourceVersion)
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	if rev > 0 && !c.waitFor(ctx, rev) {
		return c.store.Get(ctx, key, resourceVersion, out)
	}
	c.mu.Lock()
	e, ok := c.tree.Get(&cacheEntry{key: key})
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	if err := copyInto(out, e.obj.DeepCopyObject()); err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	return nil
}

// List implements Interface. Served from memory: lists without
// pagination at "" (once the cache has caught up with etcd's current
// revision, else from etcd), "0", and "N" not-older-than (once the cache
// has reached N, else ErrTimeout); "0" ignores a limit, as upstream does.
// Exact, continued and other paginated lists go to etcd.
func (c *Cacher) List(ctx context.Context, prefix string, opts ListOptions, listObj runtime.Object) error {
	if !isPrefix(prefix) {
		prefix += "/"
	}
	if err := checkPredicate(opts.Predicate); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	delegate := opts.Continue != "" ||
		opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact ||
		(opts.Limit > 0 && opts.ResourceVersion != "0") ||
		!c.isReady() || !c.covers(prefix)
	if delegate {
		return c.store.List(ctx, prefix, opts, listObj)
	}
	switch opts.ResourceVersionMatch {
	case "", metav1.ResourceVersionMatchNotOlderThan:
	default:
		return fmt.Errorf("list %s: resourceVersionMatch %q: %w", prefix, opts.ResourceVersionMatch, ErrInvalidResourceVersion)
	}
	rev, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	if opts.ResourceVersion == "" {
		cur, err := c.store.currentRevision(ctx)
		if err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		if !c.waitFor(ctx, cur) {
			return c.store.List(ctx, prefix, opts, listObj)
		}
	} else if rev > 0 && !c.waitFor(ctx, rev) {
		return fmt.Errorf("list %s: cache did not reach resourceVersion %d: %w", prefix, rev, ErrTimeout)
	}

	lm, err := meta.ListAccessor(listObj)
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	tree, at := c.snapshot()
	var objs []runtime.Object
	ascendPrefix(tree, prefix, func(e *cacheEntry) bool {
		if matches(opts.Predicate, e.obj) {
			objs = append(objs, e.obj)
		}
		return true
	})
	// Items are shallow copies of shared objects: read-only, as the
	// Interface says.
	if err := meta.SetList(listObj, objs); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	lm.SetResourceVersion(formatRV(at))
	lm.SetContinue("")
	lm.SetRemainingItemCount(nil)
	return nil
}
