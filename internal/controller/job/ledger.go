package job

import (
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// A ledger is the controller's memory of one Job between reconciles:
// which finished pods status.succeeded and status.failed already hold, so
// that each pod is counted once however long it stays and even after it
// is deleted; pods deleted from the API before they were counted; pods the
// controller deleted itself (not failures); the back-off record; and the
// latest failed pod of each index. Upstream keeps this on the API instead
// (the job-tracking finalizer holds each pod until status has counted it,
// with status.uncountedTerminatedPods in between) and only the back-off
// record in memory. Ours lives in memory, so a restarted controller starts
// a ledger afresh: it takes status as it finds it, counting the finished
// pods still present only where status holds fewer (the max), and seeds
// the back-off from those pods' finish times.
type ledger struct {
	mu      sync.Mutex
	uid     types.UID
	fresh   bool
	counted map[types.UID]bool
	ours    map[types.UID]bool
	gone    map[types.UID]*corev1.Pod
	backoff backoffRecord
	// lastFailed is, per index, the failed pod the next replacement
	// continues from (backoffLimitPerIndex only).
	lastFailed map[int]*corev1.Pod
	// written is the resourceVersion of the controller's last status
	// write: a cached Job older than that is stale.
	written uint64
}

// ledgerView is a copy of a ledger for one reconcile: decide reads it and
// never the ledger, which informer handlers change concurrently.
type ledgerView struct {
	fresh      bool
	counted    map[types.UID]bool
	ours       map[types.UID]bool
	gone       []*corev1.Pod
	backoff    backoffRecord
	lastFailed map[int]*corev1.Pod
}

// ledgers holds the ledger of every Job the controller reconciles, by key.
type ledgers struct {
	mu sync.Mutex
	m  map[string]*ledger
}

// get returns key's ledger for the Job with uid, starting a fresh one when
// there is none or it belonged to an earlier Job of the same name.
func (ls *ledgers) get(key string, uid types.UID) *ledger {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l, ok := ls.m[key]; ok && l.uid == uid {
		return l
	}
	l := &ledger{uid: uid, fresh: true, counted: map[types.UID]bool{}, ours: map[types.UID]bool{},
		gone: map[types.UID]*corev1.Pod{}, lastFailed: map[int]*corev1.Pod{}}
	if ls.m == nil {
		ls.m = map[string]*ledger{}
	}
	ls.m[key] = l
	return l
}

// lookup returns key's ledger if it belongs to the Job with uid.
func (ls *ledgers) lookup(key string, uid types.UID) *ledger {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l, ok := ls.m[key]; ok && l.uid == uid {
		return l
	}
	return nil
}

// drop forgets key's ledger (the Job is gone or finished).
func (ls *ledgers) drop(key string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	delete(ls.m, key)
}

func (l *ledger) view() ledgerView {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := ledgerView{
		fresh:      l.fresh,
		counted:    make(map[types.UID]bool, len(l.counted)),
		ours:       make(map[types.UID]bool, len(l.ours)),
		gone:       make([]*corev1.Pod, 0, len(l.gone)),
		backoff:    l.backoff,
		lastFailed: make(map[int]*corev1.Pod, len(l.lastFailed)),
	}
	for k := range l.counted {
		v.counted[k] = true
	}
	for k := range l.ours {
		v.ours[k] = true
	}
	for _, p := range l.gone {
		v.gone = append(v.gone, p)
	}
	for k, p := range l.lastFailed {
		v.lastFailed[k] = p
	}
	return v
}

// stale reports whether a cached Job at resourceVersion rv predates the
// controller's last status write: acting on it would count again what
// that write counted. resourceVersion is skiff's etcd revision, so it
// orders.
func (l *ledger) stale(rv string) bool {
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return n < l.written
}

// commit records what a reconcile put into status (written is the
// resourceVersion it wrote, "" if status did not change): the pods it
// counted, the back-off record and the latest failures by index. The
// deleted pods it was given are settled either way.
func (l *ledger) commit(v ledgerView, out *decision, written string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fresh = false
	gone := make(map[types.UID]bool, len(v.gone))
	for _, p := range v.gone {
		gone[p.UID] = true
		delete(l.gone, p.UID)
		delete(l.counted, p.UID)
		delete(l.ours, p.UID)
	}
	for _, uid := range out.counted {
		if !gone[uid] {
			l.counted[uid] = true
		}
	}
	l.backoff = out.backoff
	l.lastFailed = out.lastFailed
	if n, err := strconv.ParseUint(written, 10, 64); err == nil && n > l.written {
		l.written = n
	}
}

// deleting marks pods the controller is about to delete: their deletion
// is not a failure.
func (l *ledger) deleting(pods []*corev1.Pod) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range pods {
		l.ours[p.UID] = true
	}
}

// notDeleting undoes deleting for a pod whose delete call failed.
func (l *ledger) notDeleting(p *corev1.Pod) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.ours, p.UID)
}

// podDeleted takes the final state of a pod of the Job that left the API:
// one not counted yet is kept until the next reconcile counts it.
func (l *ledger) podDeleted(p *corev1.Pod) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.counted[p.UID] && !l.ours[p.UID] {
		l.gone[p.UID] = p
	}
	delete(l.counted, p.UID)
	delete(l.ours, p.UID)
}
