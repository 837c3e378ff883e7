package scheduler

import (
	"container/heap"
	"sync"
	"time"
)

// Back-off of a pod after a failed attempt: 1 s doubling to 10 s, as
// upstream's podInitialBackoffSeconds/podMaxBackoffSeconds.
const (
	initialBackoff = time.Second
	maxBackoff     = 10 * time.Second
	// unschedulableTimeout moves a pod that no event has woken back to
	// active after this long.
	unschedulableTimeout = 60 * time.Second
)

// queuedPod is a pod waiting in the scheduling queue.
type queuedPod struct {
	info     *podInfo
	added    time.Time // first entered the queue: the FIFO order
	attempts int
	// backoffUntil is when a failed pod may be retried.
	backoffUntil time.Time
	// unschedulableSince is when it entered the unschedulable set.
	unschedulableSince time.Time
	index              int // in the active heap, -1 elsewhere
	// updated: the pod changed while in flight, so a failure retries it
	// after the back-off instead of waiting for a cluster event.
	updated bool
}

// Queue is the scheduling queue: active (a heap ordered by priority, then
// arrival), backoff (failed pods waiting out their back-off) and
// unschedulable (pods waiting for a cluster event that could help). Every
// pod is in at most one of them, or popped (in flight).
type Queue struct {
	mu            sync.Mutex
	cond          *sync.Cond
	active        activeHeap
	activeKeys    map[string]*queuedPod
	backoff       map[string]*queuedPod
	unschedulable map[string]*queuedPod
	inFlight      map[string]*queuedPod
	// cycle counts pops; moveCycle is the cycle of the last cluster event.
	// A pod that fails after an event that arrived while it was in flight
	// goes to backoff, not unschedulable, so the event is not lost.
	cycle     int64
	moveCycle int64
	closed    bool
	now       func() time.Time
}

// NewQueue returns an empty queue.
func NewQueue() *Queue {
	q := &Queue{activeKeys: map[string]*queuedPod{}, backoff: map[string]*queuedPod{}, unschedulable: map[string]*queuedPod{}, inFlight: map[string]*queuedPod{}, now: time.Now}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues a new pending pod, or refreshes the pod of one already queued
// (an update to an unschedulable pod makes it active again, since the
// change may make it fit).
func (q *Queue) Add(p *podInfo) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if qp, ok := q.inFlight[p.key]; ok {
		qp.info = p
		qp.updated = true
		return
	}
	if qp, ok := q.activeKeys[p.key]; ok {
		qp.info = p
		heap.Fix(&q.active, qp.index)
		return
	}
	if qp, ok := q.backoff[p.key]; ok {
		qp.info = p
		return
	}
	if qp, ok := q.unschedulable[p.key]; ok {
		delete(q.unschedulable, p.key)
		qp.info = p
		q.toActiveOrBackoffLocked(qp)
		return
	}
	q.pushLocked(&queuedPod{info: p, added: q.now()})
}

func (q *Queue) pushLocked(qp *queuedPod) {
	heap.Push(&q.active, qp)
	q.activeKeys[qp.info.key] = qp
	q.cond.Signal()
}

func (q *Queue) toActiveOrBackoffLocked(qp *queuedPod) {
	if q.now().Before(qp.backoffUntil) {
		q.backoff[qp.info.key] = qp
		return
	}
	q.pushLocked(qp)
}

// Refresh replaces the pod of a queued pod without moving it (a status
// change, such as our own PodScheduled condition, cannot make it fit).
func (q *Queue) Refresh(p *podInfo) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range []map[string]*queuedPod{q.inFlight, q.activeKeys, q.backoff, q.unschedulable} {
		if qp, ok := m[p.key]; ok {
			qp.info = p // priority is immutable, so the heap order holds
			return
		}
	}
	q.pushLocked(&queuedPod{info: p, added: q.now()})
}

// Delete removes a pod wherever it waits.
func (q *Queue) Delete(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if qp, ok := q.activeKeys[key]; ok {
		heap.Remove(&q.active, qp.index)
		delete(q.activeKeys, key)
	}
	delete(q.backoff, key)
	delete(q.unschedulable, key)
	delete(q.inFlight, key)
}

// Pop blocks until a pod is active and returns it, with the cycle it was
// popped in; it returns nil once the queue is closed.
func (q *Queue) Pop() (*queuedPod, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.active) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil, 0
	}
	qp := heap.Pop(&q.active).(*queuedPod)
	delete(q.activeKeys, qp.info.key)
	q.cycle++
	q.inFlight[qp.info.key] = qp
	return qp, q.cycle
}

// Done ends a pod's attempt that succeeded (or that nobody needs any more).
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inFlight, key)
}

// Unschedulable ends a failed attempt of the pod popped in cycle: it waits
// in unschedulable for a cluster event, or in backoff if an event came
// while it was being decided. With retry (an error rather than a verdict
// about the cluster, e.g. a failed binding) it goes to backoff directly.
func (q *Queue) Unschedulable(qp *queuedPod, cycle int64, retry bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.inFlight[qp.info.key]; !ok {
		return // deleted or scheduled meanwhile
	}
	delete(q.inFlight, qp.info.key)
	qp.attempts++
	qp.backoffUntil = q.now().Add(backoffFor(qp.attempts))
	if retry || qp.updated || q.moveCycle >= cycle {
		qp.updated = false
		q.backoff[qp.info.key] = qp
		return
	}
	qp.unschedulableSince = q.now()
	q.unschedulable[qp.info.key] = qp
}

func backoffFor(attempts int) time.Duration {
	d := initialBackoff
	for i := 1; i < attempts && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// MoveAllToActive is a cluster event that may make unschedulable pods fit
// (a node added or changed, a pod deleted): they move to active, or to
// backoff until their back-off ends.
func (q *Queue) MoveAllToActive() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moveCycle = q.cycle
	for key, qp := range q.unschedulable {
		delete(q.unschedulable, key)
		q.toActiveOrBackoffLocked(qp)
	}
}

// flush moves pods whose back-off ended to active, and pods unschedulable
// for longer than unschedulableTimeout to active or backoff.
func (q *Queue) flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	for key, qp := range q.backoff {
		if !now.Before(qp.backoffUntil) {
			delete(q.backoff, key)
			q.pushLocked(qp)
		}
	}
	for key, qp := range q.unschedulable {
		if now.Sub(qp.unschedulableSince) >= unschedulableTimeout {
			delete(q.unschedulable, key)
			q.toActiveOrBackoffLocked(qp)
		}
	}
}

// Close wakes Pop, which returns nil from then on.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// Len returns how many pods wait in active, backoff and unschedulable.
func (q *Queue) Len() (active, backoff, unschedulable int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.active), len(q.backoff), len(q.unschedulable)
}

// activeHeap orders pods by priority (higher first), then arrival.
type activeHeap []*queuedPod

func (h activeHeap) Len() int { return len(h) }
func (h activeHeap) Less(i, j int) bool {
	if h[i].info.priority != h[j].info.priority {
		return h[i].info.priority > h[j].info.priority
	}
	return h[i].added.Before(h[j].added)
}
func (h activeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *activeHeap) Push(x any) {
	qp := x.(*queuedPod)
	qp.index = len(*h)
	*h = append(*h, qp)
}
func (h *activeHeap) Pop() any {
	old := *h
	n := len(old)
	qp := old[n-1]
	old[n-1] = nil
	qp.index = -1
	*h = old[:n-1]
	return qp
}
