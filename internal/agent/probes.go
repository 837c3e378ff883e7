package agent

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-io/skiff/internal/kubelet"
	"github.com/skiff-io/skiff/internal/kubelet/prober"
)

// probes adapts the prober's stream of result changes to the kubelet's
// Probes interface: failures past a liveness or startup threshold wait in
// failed until the kubelet's next sync of the pod takes them, and every
// change queues that sync.
type probes struct {
	m       *prober.Manager
	enqueue func(types.UID)

	mu     sync.Mutex
	failed map[types.UID][]kubelet.ProbeFailure
}

func newProbes(m *prober.Manager) *probes {
	return &probes{m: m, failed: map[types.UID][]kubelet.ProbeFailure{}}
}

// run consumes the prober's updates until ctx ends.
func (p *probes) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case u := <-p.m.Updates():
			if !u.Success && (u.Kind == prober.Liveness || u.Kind == prober.Startup) {
				p.mu.Lock()
				p.failed[u.PodUID] = append(p.failed[u.PodUID], kubelet.ProbeFailure{
					Container: u.Container, ContainerID: u.ContainerID, Kind: string(u.Kind),
				})
				p.mu.Unlock()
			}
			if p.enqueue != nil {
				p.enqueue(u.PodUID)
			}
		}
	}
}

func (p *probes) Sync(pod *corev1.Pod, running map[string]kubelet.ProbeTarget) {
	in := make(map[string]prober.ContainerInfo, len(running))
	for name, t := range running {
		in[name] = prober.ContainerInfo{ID: t.ID, StartedAt: t.StartedAt, PodIP: t.PodIP}
	}
	p.m.Sync(pod, in)
}

func (p *probes) RemovePod(uid types.UID) {
	p.mu.Lock()
	delete(p.failed, uid)
	p.mu.Unlock()
	p.m.RemovePod(uid)
}

func (p *probes) Ready(uid types.UID, c string) bool   { return p.m.Ready(uid, c) }
func (p *probes) Started(uid types.UID, c string) bool { return p.m.Started(uid, c) }

func (p *probes) Failed(uid types.UID) []kubelet.ProbeFailure {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.failed[uid]
	delete(p.failed, uid)
	return f
}
