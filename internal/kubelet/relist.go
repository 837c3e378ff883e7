package kubelet

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// relistLoop lists the runtime every RelistPeriod and queues each pod whose
// sandboxes or containers changed state: the kubelet's view of container
// exits (upstream's generic PLEG). containerd 1.6 has no container event
// stream, so polling is the only way.
func (k *Kubelet) relistLoop(ctx context.Context) {
	t := time.NewTicker(k.cfg.RelistPeriod)
	defer t.Stop()
	for {
		if err := k.relist(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("relisting the runtime failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// relist lists the runtime once, publishes what it holds
// (kubelet_running_pods, kubelet_running_containers) and queues the pods
// that changed. Like upstream's PLEG it observes every relist's duration,
// failed ones included, and the interval since the last one that
// succeeded.
func (k *Kubelet) relist(ctx context.Context) error {
	start := time.Now()
	if !k.lastRelist.IsZero() {
		k.metrics.relistInterval.Observe(start.Sub(k.lastRelist).Seconds())
	}
	defer func() { k.metrics.relistDuration.Observe(time.Since(start).Seconds()) }()
	sbs, err := k.cfg.Runtime.ListPodSandbox(ctx, nil)
	if err != nil {
		return fmt.Errorf("listing sandboxes: %w", err)
	}
	cs, err := k.cfg.Runtime.ListContainers(ctx, nil)
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	k.lastRelist = start
	k.metrics.setRuntimeCounts(sbs, cs)
	parts := map[types.UID][]string{}
	for _, s := range sbs {
		if uid := types.UID(s.Labels[labelPodUID]); uid != "" {
			parts[uid] = append(parts[uid], fmt.Sprintf("s%s:%d", s.Id, s.State))
		}
	}
	for _, c := range cs {
		if uid := types.UID(c.Labels[labelPodUID]); uid != "" {
			parts[uid] = append(parts[uid], fmt.Sprintf("c%s:%d", c.Id, c.State))
		}
	}
	now := map[types.UID]string{}
	for uid, p := range parts {
		sort.Strings(p)
		now[uid] = strings.Join(p, ";")
	}
	var changed []types.UID
	k.mu.Lock()
	for uid, fp := range now {
		if k.fingerprint[uid] != fp {
			changed = append(changed, uid)
		}
	}
	for uid := range k.fingerprint {
		if _, ok := now[uid]; !ok {
			changed = append(changed, uid)
		}
	}
	k.fingerprint = now
	k.mu.Unlock()
	for _, uid := range changed {
		k.enqueue(uid, workSync)
	}
	return nil
}

// isRunning reports whether c is running.
func isRunning(c *runtimeapi.ContainerStatus) bool {
	return c != nil && c.State == runtimeapi.ContainerState_CONTAINER_RUNNING
}

// isExited reports whether c has run and stopped.
func isExited(c *runtimeapi.ContainerStatus) bool {
	return c != nil && c.State == runtimeapi.ContainerState_CONTAINER_EXITED
}
