package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// Watch implements Interface on an etcd watch that starts at the
// requested revision + 1 and carries each key's previous value, which the
// predicate transitions need. "" and "0" (and SendInitialEvents) first read
// the current state and send it as ADDED events. Bookmarks carry the
// newest revision the watch has seen in an event or in one of etcd's
// (rare, unrequested) progress notifications. A watch from a compacted revision fails with ErrExpired; one
// that is compacted under it later ends with an ERROR event (410).
func (s *Store) Watch(ctx context.Context, key string, opts ListOptions) (watch.Interface, error) {
	if err := checkPredicate(opts.Predicate); err != nil {
		return nil, fmt.Errorf("watch %s: %w", key, err)
	}
	rv, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", key, err)
	}
	initial := rv == 0
	if opts.SendInitialEvents != nil {
		initial = *opts.SendInitialEvents
	}
	prefix := isPrefix(key)
	scope := []clientv3.OpOption{}
	if prefix {
		scope = append(scope, clientv3.WithRange(prefixEnd(key)))
	}

	var initEvents []watch.Event
	rev := rv
	start := time.Now()
	if initial {
		resp, err := s.client.Get(ctx, key, scope...)
		observe("list", s.cfg.resourceLabel(), start)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", key, etcdErr(err))
		}
		if rv > resp.Header.Revision {
			return nil, fmt.Errorf("watch %s: resourceVersion %d is newer than etcd's %d: %w", key, rv, resp.Header.Revision, ErrTimeout)
		}
		rev = resp.Header.Revision
		for _, kv := range resp.Kvs {
			obj, err := s.codec.decode(kv.Value, kv.ModRevision)
			if err != nil {
				return nil, fmt.Errorf("watch %s: %s: %w", key, kv.Key, err)
			}
			if matches(opts.Predicate, obj) {
				initEvents = append(initEvents, watch.Event{Type: watch.Added, Object: obj})
			}
		}
	} else if rv == 0 {
		if rev, err = s.currentRevision(ctx); err != nil {
			return nil, fmt.Errorf("watch %s: %w", key, err)
		}
	} else {
		// etcd reports a compacted start revision only on the watch
		// channel; a read at the same revision tells us now.
		_, err := s.client.Get(ctx, key, clientv3.WithRev(rv+1), clientv3.WithCountOnly())
		observe("get", s.cfg.resourceLabel(), start)
		if err != nil && !errors.Is(err, rpctypes.ErrFutureRev) {
			return nil, fmt.Errorf("watch %s from %d: %w", key, rv, etcdErr(err))
		}
	}
	if opts.SendInitialEvents != nil && *opts.SendInitialEvents {
		initEvents = append(initEvents, watch.Event{Type: watch.Bookmark, Object: bookmarkObject(s.cfg, rev, true)})
	}

	wctx, cancel := context.WithCancel(ctx)
	wopts := append(scope, clientv3.WithRev(rev+1), clientv3.WithPrevKV())
	if opts.AllowWatchBookmarks {
		wopts = append(wopts, clientv3.WithProgressNotify())
	}
	wch := s.client.Watch(wctx, key, wopts...)
	observe("watch", s.cfg.resourceLabel(), start)
	w := &storeWatch{
		store:  s,
		opts:   opts,
		result: make(chan watch.Event),
		cancel: cancel,
	}
	go w.run(wctx, wch, initEvents, rev)
	return w, nil
}

// storeWatch is one Store watch: a goroutine that owns result and turns
// etcd watch responses into watch events.
type storeWatch struct {
	store  *Store
	opts   ListOptions
	result chan watch.Event
	cancel context.CancelFunc
	once   sync.Once
}

func (w *storeWatch) Stop()                          { w.once.Do(w.cancel) }
func (w *storeWatch) ResultChan() <-chan watch.Event { return w.result }

func (w *storeWatch) run(ctx context.Context, wch clientv3.WatchChan, initEvents []watch.Event, startRev int64) {
	// lastRev is the revision up to which every event has been sent.
	lastRev := startRev
	defer close(w.result)
	defer w.Stop()
	send := func(ev watch.Event) bool {
		select {
		case w.result <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for _, ev := range initEvents {
		if !send(ev) {
			return
		}
	}
	var tick <-chan time.Time
	if w.opts.AllowWatchBookmarks {
		t := time.NewTicker(w.store.cfg.bookmarkInterval())
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			// Every event up to lastRev has been sent, so a bookmark there
			// is always true. The Store does not ask etcd for progress:
			// a request is answered on every watch of the client's
			// stream, so a thousand watches asking would cost a million
			// answers.
			if !send(watch.Event{Type: watch.Bookmark, Object: bookmarkObject(w.store.cfg, lastRev, false)}) {
				return
			}
		case resp, ok := <-wch:
			if !ok {
				if ctx.Err() == nil {
					send(errorEvent(fmt.Errorf("watch %s: etcd watch closed", w.store.cfg.Prefix)))
				}
				return
			}
			if resp.CompactRevision != 0 {
				send(errorEvent(fmt.Errorf("watch %s: compacted at %d: %w", w.store.cfg.Prefix, resp.CompactRevision, ErrExpired)))
				return
			}
			if err := resp.Err(); err != nil {
				send(errorEvent(fmt.Errorf("watch %s: %w", w.store.cfg.Prefix, etcdErr(err))))
				return
			}
			if resp.IsProgressNotify() {
				lastRev = max(lastRev, resp.Header.Revision)
				continue
			}
			for _, ev := range resp.Events {
				lastRev = max(lastRev, ev.Kv.ModRevision)
				c, err := w.store.change(ev)
				if err != nil {
					send(errorEvent(fmt.Errorf("watch %s: %w", w.store.cfg.Prefix, err)))
					return
				}
				if out, ok := c.filter(w.opts.Predicate); ok {
					if !send(out) {
						return
					}
				}
			}
		}
	}
}

// change decodes one etcd event. Objects are fresh: the Store shares
// nothing between watchers.
func (s *Store) change(ev *clientv3.Event) (change, error) {
	kv := ev.Kv
	var prev runtime.Object
	if ev.PrevKv != nil {
		p, err := s.codec.decode(ev.PrevKv.Value, ev.PrevKv.ModRevision)
		if err != nil {
			return change{}, fmt.Errorf("%s: %w", kv.Key, err)
		}
		prev = p
	}
	if ev.Type == mvccpb.DELETE {
		if prev == nil {
			return change{}, fmt.Errorf("%s: delete event without previous value", kv.Key)
		}
		if err := setResourceVersion(prev, kv.ModRevision); err != nil {
			return change{}, err
		}
		return change{typ: watch.Deleted, obj: prev}, nil
	}
	obj, err := s.codec.decode(kv.Value, kv.ModRevision)
	if err != nil {
		return change{}, fmt.Errorf("%s: %w", kv.Key, err)
	}
	c := change{typ: watch.Modified, obj: obj, prev: prev}
	if prev == nil {
		c.typ = watch.Added
	}
	c.prevAtRev = func() runtime.Object {
		_ = setResourceVersion(prev, kv.ModRevision)
		return prev
	}
	return c, nil
}
