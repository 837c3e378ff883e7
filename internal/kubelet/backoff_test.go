package kubelet

import (
	"testing"
	"time"
)

func TestBackoffDoublesAndResets(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := base
	b := newBackoff(10*time.Second, 5*time.Minute)
	b.now = func() time.Time { return now }
	const key = "uid/c"

	// First exit: restart at once.
	exit1 := base
	if got := b.remaining(key, exit1); got != 0 {
		t.Fatalf("first exit: remaining %v, want 0", got)
	}
	b.next(key, exit1, exit1.Add(-time.Second))

	// Second exit right after: wait 10 s, then 20 s, 40 s ...
	want := 10 * time.Second
	exit := exit1
	for i := 0; i < 8; i++ {
		exit = exit.Add(want + time.Second)
		now = exit
		if got := b.remaining(key, exit); got != want {
			t.Fatalf("exit %d: remaining %v, want %v", i+2, got, want)
		}
		now = exit.Add(want)
		if got := b.remaining(key, exit); got != 0 {
			t.Fatalf("exit %d after the delay: remaining %v, want 0", i+2, got)
		}
		b.next(key, exit, exit.Add(-time.Second))
		want *= 2
		if want > 5*time.Minute {
			want = 5 * time.Minute
		}
	}

	// A container that ran for 11 minutes starts over at 10 s.
	started := now
	exit = started.Add(11 * time.Minute)
	now = exit
	b.next(key, exit, started)
	if got := b.current(key); got != 10*time.Second {
		t.Fatalf("after a long run: delay %v, want 10s", got)
	}
	b.forget("uid/")
	if got := b.current(key); got != 0 {
		t.Fatalf("after forget: delay %v, want 0", got)
	}
}
