package endpointslice

import (
	"strconv"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// tracker remembers, per Service, the slices this controller last wrote
// (name → resourceVersion, "" for deleted) so that a reconcile does not act
// on a cache that has not yet seen its own writes — which would create a
// duplicate slice or undo an update. Entries are dropped once the cache has
// caught up, or after trackerTTL (the slice may have been changed or
// deleted by someone else in between, and the cache will never show the
// version we wrote).
type tracker struct {
	mu     sync.Mutex
	now    func() time.Time
	writes map[string]map[string]write
}

type write struct {
	rv string // "" for a delete
	at time.Time
}

const trackerTTL = 30 * time.Second

func newTracker() *tracker {
	return &tracker{now: time.Now, writes: map[string]map[string]write{}}
}

// wrote records a created or updated slice.
func (t *tracker) wrote(svc string, s *discoveryv1.EndpointSlice) {
	t.set(svc, s.Name, s.ResourceVersion)
}

// deleted records a deleted slice.
func (t *tracker) deleted(svc, slice string) { t.set(svc, slice, "") }

func (t *tracker) set(svc, slice, rv string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.writes[svc]
	if m == nil {
		m = map[string]write{}
		t.writes[svc] = m
	}
	m[slice] = write{rv: rv, at: t.now()}
}

// forget drops what is known about a Service (it was deleted).
func (t *tracker) forget(svc string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.writes, svc)
}

// stale reports whether cached (the slices the cache holds for svc) lacks
// a write this controller made. resourceVersions are etcd revisions in
// skiff, so a newer cached version (someone else's write) counts as seen.
func (t *tracker) stale(svc string, cached []*discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.writes[svc]
	if len(m) == 0 {
		return false
	}
	have := make(map[string]string, len(cached))
	for _, s := range cached {
		have[s.Name] = s.ResourceVersion
	}
	stale := false
	now := t.now()
	for slice, w := range m {
		got, ok := have[slice]
		rv := w.rv
		switch {
		case now.Sub(w.at) > trackerTTL:
			delete(m, slice)
		case rv == "" && ok:
			stale = true
		case rv != "" && (!ok || olderRV(got, rv)):
			stale = true
		default:
			delete(m, slice)
		}
	}
	if len(m) == 0 {
		delete(t.writes, svc)
	}
	return stale
}

// olderRV reports whether resourceVersion a is older than b. Versions that
// are not numbers compare by equality only.
func olderRV(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil {
		return a != b
	}
	return x < y
}
