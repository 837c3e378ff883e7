package scheduler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newTestQueue(now *time.Time) *Queue {
	q := NewQueue()
	q.now = func() time.Time { return *now }
	return q
}

func popKeys(q *Queue, n int) []string {
	var keys []string
	for range n {
		qp, _ := q.Pop()
		keys = append(keys, qp.info.key)
		q.Done(qp.info.key)
	}
	return keys
}

func TestQueueOrder(t *testing.T) {
	now := time.Unix(1000, 0)
	q := newTestQueue(&now)
	for _, p := range []struct {
		name string
		prio int32
	}{{"low1", 0}, {"high1", 100}, {"low2", 0}, {"high2", 100}, {"mid", 50}} {
		now = now.Add(time.Millisecond)
		q.Add(newPodInfo(testPod(p.name, "", "", withPriority(p.prio))))
	}
	want := []string{"default/high1", "default/high2", "default/mid", "default/low1", "default/low2"}
	if diff := cmp.Diff(want, popKeys(q, 5)); diff != "" {
		t.Errorf("pop order (-want +got):\n%s", diff)
	}
}

func TestQueueUnschedulableAndBackoff(t *testing.T) {
	now := time.Unix(1000, 0)
	q := newTestQueue(&now)
	q.Add(newPodInfo(testPod("p", "", "")))
	qp, cycle := q.Pop()
	q.Unschedulable(qp, cycle, false)
	if a, b, u := q.Len(); a != 0 || b != 0 || u != 1 {
		t.Fatalf("after failure: active %d backoff %d unschedulable %d, want 0 0 1", a, b, u)
	}
	// A status-only refresh does not wake it.
	q.Refresh(newPodInfo(testPod("p", "", "")))
	if _, _, u := q.Len(); u != 1 {
		t.Fatalf("refresh moved the pod")
	}
	// A cluster event within the 1 s back-off moves it to backoff ...
	q.MoveAllToActive()
	if a, b, u := q.Len(); a != 0 || b != 1 || u != 0 {
		t.Fatalf("after event: active %d backoff %d unschedulable %d, want 0 1 0", a, b, u)
	}
	// ... and the flush after the back-off to active.
	now = now.Add(999 * time.Millisecond)
	q.flush()
	if a, _, _ := q.Len(); a != 0 {
		t.Fatalf("left backoff early")
	}
	now = now.Add(time.Millisecond)
	q.flush()
	if a, _, _ := q.Len(); a != 1 {
		t.Fatalf("not active after the back-off")
	}
	// Second failure: 2 s back-off; an unwoken pod returns after 60 s.
	qp, cycle = q.Pop()
	q.Unschedulable(qp, cycle, false)
	if got := qp.backoffUntil.Sub(now); got != 2*time.Second {
		t.Errorf("second back-off = %v, want 2s", got)
	}
	now = now.Add(59 * time.Second)
	q.flush()
	if _, _, u := q.Len(); u != 1 {
		t.Fatalf("left unschedulable before 60 s")
	}
	now = now.Add(time.Second)
	q.flush()
	if a, _, _ := q.Len(); a != 1 {
		t.Fatalf("not active after 60 s unschedulable")
	}
}

func TestQueueEventDuringAttempt(t *testing.T) {
	now := time.Unix(1000, 0)
	q := newTestQueue(&now)
	q.Add(newPodInfo(testPod("p", "", "")))
	qp, cycle := q.Pop()
	q.MoveAllToActive() // e.g. a node was added while deciding
	q.Unschedulable(qp, cycle, false)
	if _, b, u := q.Len(); b != 1 || u != 0 {
		t.Errorf("backoff %d unschedulable %d, want 1 0: the event would be lost", b, u)
	}
}

func TestQueueDeleteAndClose(t *testing.T) {
	now := time.Unix(1000, 0)
	q := newTestQueue(&now)
	q.Add(newPodInfo(testPod("a", "", "")))
	q.Add(newPodInfo(testPod("b", "", "")))
	q.Delete("default/a")
	if got := popKeys(q, 1); got[0] != "default/b" {
		t.Errorf("popped %v, want b", got)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if qp, _ := q.Pop(); qp != nil {
			t.Errorf("Pop after Close returned %s", qp.info.key)
		}
	}()
	q.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Pop did not return after Close")
	}
}

func TestBackoffFor(t *testing.T) {
	got := []time.Duration{backoffFor(1), backoffFor(2), backoffFor(3), backoffFor(4), backoffFor(5), backoffFor(50)}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestQueueUpdateDuringAttempt(t *testing.T) {
	now := time.Unix(1000, 0)
	q := newTestQueue(&now)
	q.Add(newPodInfo(testPod("p", "", "")))
	qp, cycle := q.Pop()
	q.Add(newPodInfo(testPod("p", "", "", withLabels("tier", "new")))) // spec or labels changed
	q.Unschedulable(qp, cycle, false)
	if _, b, u := q.Len(); b != 1 || u != 0 {
		t.Errorf("backoff %d unschedulable %d, want 1 0: the update would be lost", b, u)
	}
	if qp.info.labels["tier"] != "new" {
		t.Errorf("queued pod not refreshed")
	}
}
