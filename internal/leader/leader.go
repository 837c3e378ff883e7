// Package leader runs a component only while this process holds its Lease
// in kube-system, so that several servers can run the scheduler and the
// controllers with one active and the others standing by. It is client-go's
// leader election on a coordination.k8s.io Lease, as upstream's components
// use it.
package leader

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Timing is how a Lease is held (upstream's --leader-elect-lease-duration,
// --leader-elect-renew-deadline, --leader-elect-retry-period): a holder
// that dies is replaced within LeaseDuration and a RetryPeriod.
type Timing struct {
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// DefaultTiming is upstream's, for kube-controller-manager and
// kube-scheduler.
var DefaultTiming = Timing{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}

// Validate checks what client-go requires: LeaseDuration > RenewDeadline >
// RetryPeriod × 1.2.
func (t Timing) Validate() error {
	if t.LeaseDuration <= t.RenewDeadline {
		return fmt.Errorf("leader election: lease duration %v must be greater than the renew deadline %v", t.LeaseDuration, t.RenewDeadline)
	}
	if float64(t.RenewDeadline) <= 1.2*float64(t.RetryPeriod) {
		return fmt.Errorf("leader election: renew deadline %v must be greater than 1.2 × the retry period %v", t.RenewDeadline, t.RetryPeriod)
	}
	return nil
}

// Identity names this process in the Lease's holderIdentity: name (the
// hostname when empty) and a random suffix, as upstream's hostname_uuid.
// Servers name it after their node, so that several servers on one
// machine tell apart.
func Identity(name string) string {
	if name == "" {
		name, _ = os.Hostname()
	}
	return name + "_" + uuid.NewString()
}

// Run campaigns for the Lease kube-system/name and calls lead with a
// context that ends when leadership is lost or ctx ends. When lead returns
// after a loss, Run campaigns again. Run returns when ctx ends, after lead
// has returned.
func Run(ctx context.Context, client kubernetes.Interface, name, identity string, timing Timing, lead func(context.Context)) error {
	if timing == (Timing{}) {
		timing = DefaultTiming
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: "kube-system", Name: name},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	log := slog.Default().With("lease", name, "identity", identity)
	for ctx.Err() == nil {
		done := make(chan struct{})
		// mu orders the start of lead against the end of le.Run: lead
		// starts on its own goroutine and must either run to its end
		// before Run returns or not run at all.
		var mu sync.Mutex
		started, stopped := false, false
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   timing.LeaseDuration,
			RenewDeadline:   timing.RenewDeadline,
			RetryPeriod:     timing.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					mu.Lock()
					if stopped {
						mu.Unlock()
						return
					}
					started = true
					mu.Unlock()
					defer close(done)
					log.Info("leading")
					lead(lctx)
				},
				OnStoppedLeading: func() { log.Info("stopped leading") },
			},
		})
		if err != nil {
			return fmt.Errorf("leader election %s: %w", name, err)
		}
		le.Run(ctx)
		// Run returns once leadership is lost; wait for lead to finish
		// before campaigning again so two copies never run here.
		mu.Lock()
		stopped = true
		wait := started
		mu.Unlock()
		if wait {
			<-done
		}
	}
	return nil
}
