package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// itemKind is what a watcher recorded.
type itemKind int

const (
	itemEvent itemKind = iota
	itemBookmark
	// itemRelist: the watcher listed afresh after its resourceVersion
	// was too old to resume from (410).
	itemRelist
)

// item is one thing a watcher saw, in the order it saw them.
type item struct {
	kind  itemKind
	typ   watch.EventType // itemEvent
	key   string          // itemEvent
	value string          // itemEvent: the object's value
	rv    int64           // the event's, bookmark's or list's resourceVersion
	// diff (itemRelist) holds the keys whose state in the list differs
	// from what the watcher had before it: the writes it did not see.
	diff []listed
}

// listed is one key's state in a list.
type listed struct {
	key string
	observed
}

// watcher follows the writers' namespace through kills: it lists once,
// then watches from the last resourceVersion it saw, resuming there after
// every disconnect. A lagging watcher also ends its watches at random
// and waits before resuming, so that it resumes from older
// resourceVersions.
type watcher struct {
	id     int
	client kubernetes.Interface
	ns     string
	lag    bool
	rnd    *rand.Rand
	report func(format string, args ...any) // a failure of the harness

	state  map[string]observed // what the events so far leave
	lastRV atomic.Int64
	items  []item
	stats  WatchStats
}

// WatchStats counts what a watcher did.
type WatchStats struct {
	Events, Bookmarks int
	// Watches counts the watches started (each restart and disconnect
	// starts one from the last resourceVersion seen).
	Watches int
	// Relists counts 410 answers to a resume, each followed by a list.
	Relists int
}

func newWatcher(id int, client kubernetes.Interface, ns string, lag bool, seed uint64, report func(string, ...any)) *watcher {
	return &watcher{id: id, client: client, ns: ns, lag: lag, rnd: rand.New(rand.NewPCG(seed, uint64(1000+id))),
		report: report, state: map[string]observed{}}
}

func (w *watcher) name() string {
	if w.lag {
		return fmt.Sprintf("watcher %d (lagging)", w.id)
	}
	return fmt.Sprintf("watcher %d", w.id)
}

// start lists the namespace: the state the watch goes on from.
func (w *watcher) start(ctx context.Context) error {
	return w.relist(ctx)
}

// run watches until stop is closed.
func (w *watcher) run(ctx context.Context, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		wctx, cancel := context.WithCancel(ctx)
		if w.lag {
			wctx, cancel = context.WithTimeout(ctx, time.Duration(500+w.rnd.IntN(2500))*time.Millisecond)
		}
		wi, err := w.client.CoreV1().ConfigMaps(w.ns).Watch(wctx, metav1.ListOptions{
			ResourceVersion:     strconv.FormatInt(w.lastRV.Load(), 10),
			AllowWatchBookmarks: true,
		})
		expired := isExpired(err)
		if err == nil {
			w.stats.Watches++
			expired = w.consume(wi, stop)
			wi.Stop()
		}
		cancel()
		if expired {
			w.stats.Relists++
			if err := w.relist(ctx); err != nil && ctx.Err() == nil {
				w.report("%s: %v", w.name(), err)
				return
			}
			continue
		}
		if err != nil || w.lag {
			d := 20 * time.Millisecond
			if w.lag {
				d = time.Duration(w.rnd.IntN(1000)) * time.Millisecond
			}
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
	}
}

// consume records a watch's events until it ends; expired says it ended
// with a 410.
func (w *watcher) consume(wi watch.Interface, stop <-chan struct{}) (expired bool) {
	for {
		var (
			ev watch.Event
			ok bool
		)
		select {
		case <-stop:
			return false
		case ev, ok = <-wi.ResultChan():
		}
		if !ok {
			return false
		}
		switch ev.Type {
		case watch.Error:
			return isExpired(apierrors.FromObject(ev.Object))
		case watch.Bookmark:
			m, err := meta.Accessor(ev.Object)
			if err != nil {
				w.report("%s: bookmark: %v", w.name(), err)
				return false
			}
			rv, err := strconv.ParseInt(m.GetResourceVersion(), 10, 64)
			if err != nil {
				w.report("%s: bookmark resourceVersion %q: %v", w.name(), m.GetResourceVersion(), err)
				return false
			}
			w.stats.Bookmarks++
			w.items = append(w.items, item{kind: itemBookmark, rv: rv})
			w.advance(rv)
		case watch.Added, watch.Modified, watch.Deleted:
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if !ok {
				w.report("%s: %s event of a %T", w.name(), ev.Type, ev.Object)
				return false
			}
			o, err := observe(cm)
			if err != nil {
				w.report("%s: %v", w.name(), err)
				return false
			}
			w.stats.Events++
			w.items = append(w.items, item{kind: itemEvent, typ: ev.Type, key: cm.Name, value: o.value, rv: o.rv})
			if ev.Type == watch.Deleted {
				delete(w.state, cm.Name)
			} else {
				w.state[cm.Name] = o
			}
			w.advance(o.rv)
		}
	}
}

// advance moves the resume point on; it never goes back, so that a
// duplicate or reordered event does not make the watcher ask for history
// again.
func (w *watcher) advance(rv int64) {
	if rv > w.lastRV.Load() {
		w.lastRV.Store(rv)
	}
}

// relist lists the namespace (a consistent read from etcd) and records
// how it differs from what the watcher had.
func (w *watcher) relist(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		lctx, cancel := context.WithTimeout(ctx, requestTimeout)
		list, err := w.client.CoreV1().ConfigMaps(w.ns).List(lctx, metav1.ListOptions{})
		cancel()
		if err == nil {
			return w.recordList(list)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("list %s: %w", w.ns, err)
		}
		pause(ctx, 20*time.Millisecond)
	}
}

func (w *watcher) recordList(list *corev1.ConfigMapList) error {
	rv, err := strconv.ParseInt(list.ResourceVersion, 10, 64)
	if err != nil {
		return fmt.Errorf("list resourceVersion %q: %w", list.ResourceVersion, err)
	}
	now := map[string]observed{}
	for i := range list.Items {
		o, err := observe(&list.Items[i])
		if err != nil {
			return err
		}
		now[list.Items[i].Name] = o
	}
	var diff []listed
	for k, o := range now {
		if w.state[k] != o {
			diff = append(diff, listed{key: k, observed: o})
		}
	}
	for k := range w.state {
		if _, ok := now[k]; !ok {
			diff = append(diff, listed{key: k})
		}
	}
	w.items = append(w.items, item{kind: itemRelist, rv: rv, diff: diff})
	w.state = now
	w.lastRV.Store(rv)
	return nil
}

func isExpired(err error) bool {
	if err == nil {
		return false
	}
	if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
		return true
	}
	var st apierrors.APIStatus
	return errors.As(err, &st) && st.Status().Code == http.StatusGone
}
