package integration

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiff-io/skiff/internal/leader"
	"github.com/skiff-io/skiff/test/framework"
)

// Two candidates for one Lease: exactly one leads; when it stops, the
// other takes over.
func TestLeaderElectionHandsOver(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	var active, maxActive atomic.Int32
	var leads [2]atomic.Bool
	var cancels [2]context.CancelFunc
	var wg sync.WaitGroup
	for i := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		cancels[i] = cancel
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = leader.Run(ctx, c.Client, "test-leader", []string{"one", "two"}[i], leader.Timing{}, func(lctx context.Context) {
				n := active.Add(1)
				for m := maxActive.Load(); n > m && !maxActive.CompareAndSwap(m, n); m = maxActive.Load() {
				}
				leads[i].Store(true)
				<-lctx.Done()
				leads[i].Store(false)
				active.Add(-1)
			})
		}()
	}
	t.Cleanup(func() {
		for _, c := range cancels {
			c()
		}
		wg.Wait()
	})
	framework.Eventually(t, 10*time.Second, func() bool { return leads[0].Load() || leads[1].Load() })
	first := 0
	if leads[1].Load() {
		first = 1
	}
	cancels[first]()
	framework.Eventually(t, 20*time.Second, func() bool { return leads[1-first].Load() })
	if m := maxActive.Load(); m != 1 {
		t.Fatalf("%d candidates led at once, want 1", m)
	}
}
