package prober

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Event reasons, as upstream's kubelet records them.
const (
	reasonUnhealthy    = "Unhealthy"
	reasonProbeWarning = "ProbeWarning"
)

// worker probes one container (one container ID) with one probe, from the
// container's start until the Manager stops it.
type worker struct {
	m           *Manager
	podUID      types.UID
	container   *v1.Container
	containerID string
	fieldPath   string
	kind        Kind
	spec        *v1.Probe     // with defaults applied
	trigger     chan struct{} // asks for a probe now; buffered 1

	cancel context.CancelFunc // set by Manager.launchLocked under Manager.mu

	// Owned by the run goroutine.
	last   result // result of the previous probe
	streak int    // probes in a row that returned last
	onHold bool   // stop probing until the container is replaced
}

func newWorker(m *Manager, uid types.UID, cs *containerState, kind Kind, p *v1.Probe) *worker {
	return &worker{
		m:           m,
		podUID:      uid,
		container:   cs.spec,
		containerID: cs.info.ID,
		fieldPath:   cs.fieldPath,
		kind:        kind,
		spec:        withDefaults(p, kind),
		trigger:     make(chan struct{}, 1),
	}
}

// withDefaults fills the probe fields the API server defaults, for pods that
// did not come through it.
func withDefaults(p *v1.Probe, kind Kind) *v1.Probe {
	c := p.DeepCopy()
	if c.InitialDelaySeconds < 0 {
		c.InitialDelaySeconds = 0
	}
	if c.PeriodSeconds <= 0 {
		c.PeriodSeconds = 10
	}
	if c.TimeoutSeconds <= 0 {
		c.TimeoutSeconds = 1
	}
	if c.SuccessThreshold <= 0 || kind != Readiness {
		c.SuccessThreshold = 1 // validation requires 1 for liveness and startup
	}
	if c.FailureThreshold <= 0 {
		c.FailureThreshold = 3
	}
	return c
}

// poke asks the worker to probe now. It never blocks.
func (w *worker) poke() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

func (w *worker) seconds(n int32) time.Duration { return time.Duration(n) * w.m.second }

// run probes until ctx ends or the worker has nothing more to do.
func (w *worker) run(ctx context.Context) {
	v, ok := w.m.view(w)
	if !ok {
		return
	}
	if delay := time.Until(v.info.StartedAt.Add(w.seconds(w.spec.InitialDelaySeconds))); delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	period := w.seconds(w.spec.PeriodSeconds)
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for w.probe(ctx) {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-w.trigger:
			ticker.Reset(period)
		}
	}
}

// probe runs the probe once if it should run now, and records the result.
// It returns whether the worker should go on.
func (w *worker) probe(ctx context.Context) bool {
	v, ok := w.m.view(w)
	if !ok {
		return false
	}
	if w.onHold {
		return true
	}
	if v.pod.DeletionTimestamp != nil && (w.kind == Liveness || w.kind == Startup) {
		// The pod is shutting down: never kill it for a failed probe now.
		w.set(ctx, v.pod, resultSuccess, "")
		return false
	}
	if (w.kind == Startup) == v.started {
		// Startup probes run until the container started, the others after.
		return true
	}

	log := w.m.log.With("pod", v.pod.Namespace+"/"+v.pod.Name, "container", w.container.Name, "probe", string(w.kind))
	t := target{container: w.container, containerID: w.containerID, podIP: v.info.PodIP}
	res, out, err := w.m.prober.run(ctx, w.spec, t, w.seconds(w.spec.TimeoutSeconds))
	if ctx.Err() != nil {
		return false // stopped mid-probe: the outcome means nothing
	}
	if err != nil {
		// The probe could not run at all: report it, but keep the result.
		log.Info("probe errored", "err", err)
		w.event(v.pod, reasonUnhealthy, "%s probe errored and resulted in %s state: %s", w.kind, res, err)
		return true
	}

	r := resultFailure
	switch res {
	case outcomeSuccess:
		r = resultSuccess
	case outcomeWarning:
		r = resultSuccess
		w.event(v.pod, reasonProbeWarning, "%s probe warning: %s", w.kind, out)
	case outcomeFailure:
		log.Debug("probe failed", "output", out)
		w.event(v.pod, reasonUnhealthy, "%s probe failed: %s", w.kind, out)
	}

	if r == w.last {
		w.streak++
	} else {
		w.last, w.streak = r, 1
	}
	if (r == resultFailure && w.streak < int(w.spec.FailureThreshold)) ||
		(r == resultSuccess && w.streak < int(w.spec.SuccessThreshold)) {
		return true
	}
	w.set(ctx, v.pod, r, out)

	if (w.kind == Liveness && r == resultFailure) || w.kind == Startup {
		// The container is about to be killed, or has started: nothing
		// more to learn from this container with this probe.
		w.onHold = true
		w.streak = 0
	}
	return true
}

// set stores r and, if it changed, sends an Update.
func (w *worker) set(ctx context.Context, pod *v1.Pod, r result, msg string) {
	if !w.m.setResult(w, r) {
		return
	}
	w.m.log.Info("probe result changed", "pod", pod.Namespace+"/"+pod.Name, "container", w.container.Name,
		"probe", string(w.kind), "success", r == resultSuccess)
	u := Update{
		PodUID:      w.podUID,
		Container:   w.container.Name,
		ContainerID: w.containerID,
		Kind:        w.kind,
		Success:     r == resultSuccess,
		Message:     msg,
	}
	select {
	case w.m.updates <- u:
	case <-ctx.Done():
	}
}

// event records a Warning event on the pod, pointing at the container.
func (w *worker) event(pod *v1.Pod, reason, format string, args ...any) {
	if w.m.recorder == nil {
		return
	}
	ref := &v1.ObjectReference{
		Kind:            "Pod",
		APIVersion:      "v1",
		Namespace:       pod.Namespace,
		Name:            pod.Name,
		UID:             pod.UID,
		ResourceVersion: pod.ResourceVersion,
		FieldPath:       w.fieldPath,
	}
	w.m.recorder.Eventf(ref, v1.EventTypeWarning, reason, format, args...)
}
