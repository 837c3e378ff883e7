package flowcontrol

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// estimatedSeatSeconds is what a request is charged per seat when it is
// dispatched, before its real duration is known; the charge is corrected
// when it ends.
const estimatedSeatSeconds = 0.01

// level is one priority level: its seats and, for a queuing level, its
// fair queues.
//
// Fair queuing: each flow (a flow schema and its distinguisher, hashed) is
// dealt a hand of queues (shuffle sharding) and each request joins the
// shortest queue of its hand, so that a flow with many requests fills its
// own few queues while another flow's hand almost surely holds an empty
// one. Queues are served by start-time fair queuing over seat-seconds:
// each queue has a virtual start time, next, advanced by what its
// requests cost; a queue that wakes up from idle starts at the level's
// virtual time (it gets no credit for having been idle); the queue with
// the least next goes first (among equals, the one whose first request
// has waited longest), and its request runs when its seats are free. A
// newcomer from an idle flow starts at the virtual time, which waiting
// queues are not below (it is the start of the last request dispatched,
// the least of all then), so it is not put behind a flood's backlog: it
// waits at most for one request of each queue that has been served no
// more than it (at worst one per queue of the flood's hand).
//
// While the first request in line does not fit (a wide LIST waiting for
// seats), narrower requests of other queues run past it in the seats it
// will leave free (backfill; see dispatchLocked), so that a GET does not
// wait for a LIST to end, and the LIST waits for nothing that ran past it.
type level struct {
	name   string
	exempt bool

	// uid is the X-Kubernetes-PF-PriorityLevel-UID value; nil when the
	// level is not stored (a mandatory level imagined). Set at
	// configuration, read by requests: atomic.
	uid      atomic.Pointer[[]string]
	maxSeats atomic.Int32

	now        func() time.Time
	retry      *retryAfter
	metrics    *metricsSet
	seatsGauge prometheus.Gauge // apiserver_flowcontrol_current_executing_seats

	mu sync.Mutex
	// limit is the seats that may be occupied at once; reject makes a
	// request that does not fit fail at once instead of queuing.
	limit            int
	reject           bool
	handSize         int
	queueLengthLimit int
	queues           []*queue
	inUse            int     // seats occupied
	backfilled       int     // seats occupied by requests that ran past a wider one
	waiting          int     // requests in queues
	virtual          float64 // virtual time: the start of the request last dispatched
	hand             []int   // scratch for dealing
	seq              uint64  // requests enqueued so far
}

// queue is one of a level's fair queues.
type queue struct {
	reqs []*request // waiting, first in first out
	// next is the virtual time at which the queue's next request starts,
	// in seat-seconds.
	next         float64
	waitingSeats int
	runningSeats int
}

// request is one admitted or waiting request of a level.
type request struct {
	seq      uint64 // order of arrival in the level
	seats    int
	hash     uint64
	q        *queue
	ready    chan struct{} // closed when dispatched
	started  time.Time
	running  bool
	backfill bool // ran past a wider request that did not fit
}

func newLevel(name string, exempt bool, m *metricsSet, now func() time.Time) *level {
	return &level{name: name, exempt: exempt, now: now, retry: newRetryAfter(), metrics: m,
		seatsGauge: m.executingSeats.WithLabelValues(name)}
}

// levelConfig is what a level is told at each configuration.
type levelConfig struct {
	uid              string
	limit            int // seats; at least 1
	nominal          int
	reject           bool
	queues           int
	handSize         int
	queueLengthLimit int
}

// configure applies cfg in place: requests waiting stay, re-dealt onto the
// new queues if their number or the hand size changed (a level that turns
// to rejecting keeps one queue while they drain), and cut to the new limit
// if they are wider.
func (l *level) configure(cfg levelConfig) {
	if cfg.uid != "" {
		l.uid.Store(&[]string{cfg.uid})
	} else {
		l.uid.Store(nil)
	}
	if l.exempt {
		return
	}
	l.metrics.nominalLimit.WithLabelValues(l.name).Set(float64(cfg.nominal))
	l.metrics.currentLimit.WithLabelValues(l.name).Set(float64(cfg.limit))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limit, l.reject, l.queueLengthLimit = max(1, cfg.limit), cfg.reject, cfg.queueLengthLimit
	l.maxSeats.Store(int32(levelMaxSeats(l.limit)))
	queues := cfg.queues
	if cfg.reject {
		queues = min(l.waiting, 1)
	}
	for _, q := range l.queues {
		for _, r := range q.reqs {
			if r.seats > l.limit {
				q.waitingSeats -= r.seats - l.limit
				r.seats = l.limit
			}
		}
	}
	if queues != len(l.queues) || cfg.handSize != l.handSize {
		old := l.queues
		l.queues = make([]*queue, queues)
		for i := range l.queues {
			l.queues[i] = &queue{next: l.virtual}
		}
		l.handSize = max(1, min(cfg.handSize, queues))
		l.waiting = 0
		for _, q := range old {
			for _, r := range q.reqs {
				l.enqueueLocked(r, l.chooseLocked(r.hash))
			}
		}
	}
	l.dispatchLocked()
}

// Rejection is the error of a request its level refuses: the API server
// answers 429 with Retry-After.
type Rejection struct {
	// Reason is queue-full, concurrency-limit, time-out or cancelled.
	Reason     string
	RetryAfter time.Duration
}

func (e *Rejection) Error() string {
	return "request rejected by API Priority and Fairness: " + e.Reason
}

// admit returns once the request may run with seats (release must then be
// called when it ends), or with a *Rejection: its queue is full, the level
// rejects rather than queues, or ctx ended while it waited.
func (l *level) admit(ctx context.Context, hash uint64, seats int, sm *schemaMetrics) (release func(), err error) {
	l.mu.Lock()
	seats = max(1, min(seats, l.limit))
	r := &request{seats: seats, hash: hash}
	if l.reject {
		if l.waiting > 0 || l.inUse+seats > l.limit {
			l.mu.Unlock()
			return nil, l.rejected(reasonConcurrencyLimit, sm)
		}
		r.q = &queue{}
		l.startLocked(r)
		l.mu.Unlock()
		return l.releaser(r, sm, 0), nil
	}
	q := l.chooseLocked(hash)
	if len(q.reqs) >= l.queueLengthLimit {
		l.mu.Unlock()
		return nil, l.rejected(reasonQueueFull, sm)
	}
	r.ready = make(chan struct{})
	l.enqueueLocked(r, q)
	l.dispatchLocked()
	if r.running {
		l.mu.Unlock()
		return l.releaser(r, sm, 0), nil
	}
	l.mu.Unlock()

	enqueued := l.now()
	sm.inQueue.Inc()
	defer sm.inQueue.Dec()
	select {
	case <-r.ready:
		waited := l.now().Sub(enqueued)
		return l.releaser(r, sm, waited), nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	if r.running { // dispatched as the context ended
		l.mu.Unlock()
		return l.releaser(r, sm, l.now().Sub(enqueued)), nil
	}
	l.removeLocked(r)
	l.dispatchLocked()
	l.mu.Unlock()
	sm.waitRejected.Observe(l.now().Sub(enqueued).Seconds())
	reason := reasonCancelled
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		reason = reasonTimeout
	}
	return nil, l.rejected(reason, sm)
}

func (l *level) rejected(reason string, sm *schemaMetrics) error {
	sm.reject(reason)
	return &Rejection{Reason: reason, RetryAfter: l.retry.reject(l.now())}
}

// releaser returns the func that ends r's run.
func (l *level) releaser(r *request, sm *schemaMetrics, waited time.Duration) func() {
	sm.dispatched.Inc()
	sm.waitExecuted.Observe(waited.Seconds())
	sm.executing.Inc()
	var once sync.Once
	return func() {
		once.Do(func() {
			sm.executing.Dec()
			l.finish(r)
		})
	}
}

// finish frees r's seats, corrects what its queue was charged with its
// real duration, and dispatches what now fits.
func (l *level) finish(r *request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inUse -= r.seats
	if r.backfill {
		l.backfilled -= r.seats
	}
	r.q.runningSeats -= r.seats
	took := l.now().Sub(r.started).Seconds()
	r.q.next += float64(r.seats) * (took - estimatedSeatSeconds)
	l.seatsGauge.Set(float64(l.inUse))
	l.dispatchLocked()
}

// chooseLocked deals hash its hand of queues and returns the one holding
// the fewest seats, waiting and running.
func (l *level) chooseLocked(hash uint64) *queue {
	l.hand = deal(hash, len(l.queues), l.handSize, l.hand)
	best := l.queues[l.hand[0]]
	for _, i := range l.hand[1:] {
		if q := l.queues[i]; q.waitingSeats+q.runningSeats < best.waitingSeats+best.runningSeats {
			best = q
		}
	}
	return best
}

func (l *level) enqueueLocked(r *request, q *queue) {
	if len(q.reqs) == 0 {
		// Waking up: no credit for the time it was idle.
		q.next = max(q.next, l.virtual)
	}
	r.q = q
	l.seq++
	r.seq = l.seq
	q.reqs = append(q.reqs, r)
	q.waitingSeats += r.seats
	l.waiting++
}

func (l *level) removeLocked(r *request) {
	q := r.q
	if i := slices.Index(q.reqs, r); i >= 0 {
		q.reqs = slices.Delete(q.reqs, i, i+1)
		q.waitingSeats -= r.seats
		l.waiting--
	}
}

// dispatchLocked runs waiting requests, fairest first, while they fit in
// the free seats. When the fairest does not fit, it stays first in line
// and others run past it (backfill), fairest first, but only in the seats
// it will leave free once the requests that ran before it end: it never
// waits for one that ran past it.
func (l *level) dispatchLocked() {
	for l.waiting > 0 {
		q := l.fairestLocked(nil, l.limit)
		if q == nil {
			return
		}
		if r := q.reqs[0]; l.inUse+r.seats <= l.limit {
			l.popLocked(q, false)
			continue
		} else if budget := l.limit - r.seats - l.backfilled; budget > 0 {
			if b := l.fairestLocked(q, min(budget, l.limit-l.inUse)); b != nil {
				l.popLocked(b, true)
				continue
			}
		}
		return
	}
}

// fairestLocked returns, among the queues whose first request needs at
// most seats, the one with the least next (among equals, the one whose
// first request has waited longest); skip is not considered.
func (l *level) fairestLocked(skip *queue, seats int) *queue {
	var q *queue
	for _, c := range l.queues {
		if c == skip || len(c.reqs) == 0 || c.reqs[0].seats > seats {
			continue
		}
		if q == nil || c.next < q.next || (c.next == q.next && c.reqs[0].seq < q.reqs[0].seq) {
			q = c
		}
	}
	return q
}

// popLocked runs q's first request.
func (l *level) popLocked(q *queue, backfill bool) {
	r := q.reqs[0]
	q.reqs[0] = nil
	q.reqs = q.reqs[1:]
	q.waitingSeats -= r.seats
	l.waiting--
	l.virtual = max(l.virtual, q.next)
	q.next += float64(r.seats) * estimatedSeatSeconds
	if backfill {
		r.backfill = true
		l.backfilled += r.seats
	}
	l.startLocked(r)
	close(r.ready)
}

func (l *level) startLocked(r *request) {
	r.running = true
	r.started = l.now()
	r.q.runningSeats += r.seats
	l.inUse += r.seats
	l.seatsGauge.Set(float64(l.inUse))
}
