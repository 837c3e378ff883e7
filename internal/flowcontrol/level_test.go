package flowcontrol

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func testLevel(t *testing.T, cfg levelConfig) (*level, *schemaMetrics, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	m := newMetrics(nil)
	l := newLevel("test", false, m, clock.Now)
	if cfg.nominal == 0 {
		cfg.nominal = cfg.limit
	}
	l.configure(cfg)
	return l, m.forSchema("test", "test"), clock
}

// admission is one request admitted in the background.
type admission struct {
	id      string
	release func()
	err     error
}

// admitAsync admits a request on its own goroutine and reports on out
// once it runs or is rejected.
func admitAsync(ctx context.Context, l *level, sm *schemaMetrics, id string, hash uint64, seats int, out chan<- admission) {
	go func() {
		release, err := l.admit(ctx, hash, seats, sm)
		out <- admission{id: id, release: release, err: err}
	}()
}

// waitWaiting waits until n requests wait in l.
func waitWaiting(t *testing.T, l *level, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		w := l.waiting
		l.mu.Unlock()
		if w == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests waiting, want %d", w, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustAdmit(t *testing.T, l *level, sm *schemaMetrics, hash uint64, seats int) func() {
	t.Helper()
	release, err := l.admit(context.Background(), hash, seats, sm)
	if err != nil {
		t.Fatalf("admit: %v", err)
	}
	return release
}

func rejectionReason(err error) string {
	var rej *Rejection
	if errors.As(err, &rej) {
		return rej.Reason
	}
	return fmt.Sprint(err)
}

func next(t *testing.T, ch <-chan admission) admission {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(5 * time.Second):
		t.Fatal("no request admitted")
		return admission{}
	}
}

func nothingNext(t *testing.T, ch <-chan admission) {
	t.Helper()
	select {
	case a := <-ch:
		t.Fatalf("request %s admitted (err %v), want it waiting", a.id, a.err)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestRejectLevel(t *testing.T) {
	l, sm, _ := testLevel(t, levelConfig{limit: 3, reject: true})
	r1 := mustAdmit(t, l, sm, 1, 1)
	r2 := mustAdmit(t, l, sm, 2, 2)
	if _, err := l.admit(context.Background(), 3, 1, sm); rejectionReason(err) != reasonConcurrencyLimit {
		t.Fatalf("a request past the limit: %v, want %s", err, reasonConcurrencyLimit)
	}
	r2()
	r2() // a second release is harmless
	r3 := mustAdmit(t, l, sm, 3, 2)
	r1()
	r3()
	if l.inUse != 0 {
		t.Fatalf("%d seats in use after every release", l.inUse)
	}
}

func TestQueueFull(t *testing.T) {
	l, sm, _ := testLevel(t, levelConfig{limit: 1, queues: 1, handSize: 1, queueLengthLimit: 2})
	running := mustAdmit(t, l, sm, 7, 1)
	out := make(chan admission, 4)
	admitAsync(context.Background(), l, sm, "a", 7, 1, out)
	waitWaiting(t, l, 1)
	admitAsync(context.Background(), l, sm, "b", 7, 1, out)
	waitWaiting(t, l, 2)
	if _, err := l.admit(context.Background(), 7, 1, sm); rejectionReason(err) != reasonQueueFull {
		t.Fatalf("a third request for a queue of two: %v, want %s", err, reasonQueueFull)
	}
	running()
	a := next(t, out)
	a.release()
	b := next(t, out)
	b.release()
	if a.id != "a" || b.id != "b" {
		t.Fatalf("served %s then %s, want a then b (first in, first out)", a.id, b.id)
	}
}

func TestQueueTimeout(t *testing.T) {
	l, sm, _ := testLevel(t, levelConfig{limit: 1, queues: 4, handSize: 2, queueLengthLimit: 10})
	running := mustAdmit(t, l, sm, 1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := l.admit(ctx, 2, 1, sm); rejectionReason(err) != reasonTimeout {
		t.Fatalf("a request past its wait: %v, want %s", err, reasonTimeout)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := l.admit(ctx, 2, 1, sm); rejectionReason(err) != reasonCancelled {
		t.Fatalf("a request whose client left: %v, want %s", err, reasonCancelled)
	}
	waitWaiting(t, l, 0)
	running()
	mustAdmit(t, l, sm, 3, 1)()
}

// A flow that floods a level waits behind its own requests: a request of
// another flow that arrives later waits for at most one request of each of
// the flood's queues (its hand), not for the whole flood.
func TestFairQueuing(t *testing.T) {
	const hand = 6
	l, sm, clock := testLevel(t, levelConfig{limit: 1, queues: 64, handSize: hand, queueLengthLimit: 50})
	flood, other := hashFlow("global-default", "alice"), hashFlow("global-default", "bob")
	out := make(chan admission, 64)
	running := mustAdmit(t, l, sm, flood, 1)
	const flooding = 30
	for i := range flooding {
		admitAsync(context.Background(), l, sm, fmt.Sprint("alice-", i), flood, 1, out)
		waitWaiting(t, l, i+1)
	}
	admitAsync(context.Background(), l, sm, "bob", other, 1, out)
	waitWaiting(t, l, flooding+1)
	nothingNext(t, out)
	before := 0
	for {
		clock.Step(time.Duration(50+before*7) * time.Millisecond)
		running()
		a := next(t, out)
		if a.err != nil {
			t.Fatal(a.err)
		}
		running = a.release
		if a.id == "bob" {
			break
		}
		before++
	}
	if before > hand {
		t.Fatalf("bob ran after %d of alice's requests, want at most %d (one per queue of her hand)", before, hand)
	}
	// Then bob, whose request was short, goes first when he comes back:
	// alice's queues have been charged for what they ran.
	clock.Step(time.Millisecond)
	running()
	a := next(t, out)
	running = a.release
	admitAsync(context.Background(), l, sm, "bob-again", other, 1, out)
	waitWaiting(t, l, flooding-before)
	clock.Step(80 * time.Millisecond)
	running()
	if a := next(t, out); a.id != "bob-again" {
		t.Fatalf("%s ran, want bob-again (ahead of alice's waiting requests)", a.id)
	} else {
		running = a.release
	}
	for range flooding - before - 1 {
		running()
		a := next(t, out)
		running = a.release
	}
	running()
}

// While the fairest request does not fit, narrower ones run past it only
// in the seats it will leave free: a GET does not wait for a LIST, and the
// LIST does not wait for the GETs.
func TestBackfill(t *testing.T) {
	l, sm, _ := testLevel(t, levelConfig{limit: 10, queues: 64, handSize: 6, queueLengthLimit: 50})
	running := mustAdmit(t, l, sm, hashFlow("fs", "a"), 5)
	out := make(chan admission, 8)
	admitAsync(context.Background(), l, sm, "wide", hashFlow("fs", "b"), 8, out)
	waitWaiting(t, l, 1)
	nothingNext(t, out)
	// 10 - 8 = 2 seats the wide one will leave: two narrow ones run now.
	for _, id := range []string{"c", "d"} {
		admitAsync(context.Background(), l, sm, id, hashFlow("fs", id), 1, out)
		if a := next(t, out); a.id != id {
			t.Fatalf("%s ran, want %s past the wide request", a.id, id)
		} else {
			defer a.release()
		}
	}
	admitAsync(context.Background(), l, sm, "e", hashFlow("fs", "e"), 1, out)
	waitWaiting(t, l, 2)
	nothingNext(t, out)
	// Once the request that ran before it ends, the wide one runs beside
	// c and d; e waits for seats.
	running()
	if a := next(t, out); a.id != "wide" {
		t.Fatalf("%s ran, want the wide request", a.id)
	} else {
		defer a.release()
	}
	nothingNext(t, out)
}

// A request wider than the level's limit is cut to the limit, and runs.
func TestWiderThanLimit(t *testing.T) {
	l, sm, _ := testLevel(t, levelConfig{limit: 4, queues: 8, handSize: 2, queueLengthLimit: 5})
	release := mustAdmit(t, l, sm, 1, 10)
	if l.inUse != 4 {
		t.Fatalf("%d seats in use, want 4", l.inUse)
	}
	release()
}

// Reconfiguring keeps waiting requests, re-dealt onto the new queues, and
// a higher limit lets them run.
func TestReconfigureKeepsWaiting(t *testing.T) {
	l, sm, _ := testLevel(t, levelConfig{limit: 1, queues: 8, handSize: 2, queueLengthLimit: 5})
	running := mustAdmit(t, l, sm, 1, 1)
	out := make(chan admission, 4)
	admitAsync(context.Background(), l, sm, "a", 2, 1, out)
	waitWaiting(t, l, 1)
	admitAsync(context.Background(), l, sm, "b", 3, 1, out)
	waitWaiting(t, l, 2)
	l.configure(levelConfig{limit: 1, nominal: 1, queues: 16, handSize: 4, queueLengthLimit: 5})
	waitWaiting(t, l, 2)
	nothingNext(t, out)
	l.configure(levelConfig{limit: 3, nominal: 3, queues: 16, handSize: 4, queueLengthLimit: 5})
	for range 2 {
		a := next(t, out)
		if a.err != nil {
			t.Fatal(a.err)
		}
		a.release()
	}
	running()
}

// A level that shrinks below a waiting request's width, or turns to
// rejecting, still runs the requests that were waiting.
func TestReconfigureShrinkAndReject(t *testing.T) {
	l, sm, _ := testLevel(t, levelConfig{limit: 10, queues: 8, handSize: 2, queueLengthLimit: 5})
	running := mustAdmit(t, l, sm, 1, 6)
	out := make(chan admission, 4)
	admitAsync(context.Background(), l, sm, "wide", 2, 8, out)
	waitWaiting(t, l, 1)
	l.configure(levelConfig{limit: 4, nominal: 4, reject: true})
	if _, err := l.admit(context.Background(), 3, 1, sm); rejectionReason(err) != reasonConcurrencyLimit {
		t.Fatalf("a newcomer while the level drains: %v, want %s", err, reasonConcurrencyLimit)
	}
	running()
	a := next(t, out)
	if a.err != nil {
		t.Fatal(a.err)
	}
	if l.inUse != 4 {
		t.Errorf("%d seats in use, want the waiting request cut to the new limit of 4", l.inUse)
	}
	a.release()
	mustAdmit(t, l, sm, 3, 1)()
}

func TestRetryAfter(t *testing.T) {
	at := func(sec int64) time.Time { return time.Unix(1_000_000+sec, 0) }
	ra := newRetryAfter()
	steps := []struct {
		sec      int64
		rejected int
		want     time.Duration // after the second's rejections
	}{
		{0, 5, time.Second},
		{1, 1, 2 * time.Second}, // 5 >= 3×1 in the second before: doubled
		{2, 1, 2 * time.Second}, // raised one second ago: not again yet
		{3, 10, 2 * time.Second},
		{4, 1, 4 * time.Second}, // 11 >= 3×2 in the 2 s before
		{20, 1, 3 * time.Second},
		{21, 1, 2 * time.Second},
		{22, 1, 2 * time.Second}, // 2 rejections in the 2 s before: kept
		{30, 1, time.Second},
		{31, 1, time.Second},
	}
	for _, s := range steps {
		var got time.Duration
		for range s.rejected {
			got = ra.reject(at(s.sec))
		}
		if got != s.want {
			t.Fatalf("at %d s: Retry-After %v, want %v", s.sec, got, s.want)
		}
	}
	for sec := int64(100); sec < 200; sec++ {
		for range 200 {
			ra.reject(at(sec))
		}
	}
	if got := ra.reject(at(200)); got != maxRetryAfter*time.Second {
		t.Fatalf("under a sustained flood: %v, want the maximum %d s", got, maxRetryAfter)
	}
}
