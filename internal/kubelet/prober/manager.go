package prober

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
)

// Kind names a probe, as upstream spells it in events.
type Kind string

// The three kinds of probe.
const (
	Liveness  Kind = "Liveness"
	Readiness Kind = "Readiness"
	Startup   Kind = "Startup"
)

// Update reports that a probe result changed.
type Update struct {
	PodUID      types.UID
	Container   string // container name
	ContainerID string // the container the result belongs to
	Kind        Kind
	// Success is the new result. Success false for Liveness or Startup means
	// the container failed failureThreshold probes in a row and must be
	// killed and restarted (by the kubelet core, which also emits the
	// "Killing" event).
	Success bool
	// Message is the output of the probe that decided the result.
	Message string
}

// ContainerInfo describes a running container to the Manager.
type ContainerInfo struct {
	ID        string    // CRI container ID; a new ID is a new container
	StartedAt time.Time // when the container started; initialDelaySeconds counts from here
	PodIP     string    // default host for httpGet, tcpSocket and grpc probes
}

// result is a stored probe result.
type result int8

const (
	resultUnknown result = iota
	resultSuccess
	resultFailure
)

// updateBuffer is how many Updates may wait for the consumer before workers block.
const updateBuffer = 128

// Manager runs the probes of the containers on a node. Create it with New,
// run it with Start, and feed it with Sync and RemovePod. All methods are
// safe for concurrent use.
type Manager struct {
	log      *slog.Logger
	recorder record.EventRecorder
	prober   *prober
	updates  chan Update
	// second is the length of a probe "second" (periodSeconds,
	// timeoutSeconds, initialDelaySeconds). Tests shrink it.
	second time.Duration

	mu      sync.Mutex
	ctx     context.Context // Start's; nil before Start
	stopped bool            // Start's ctx ended: launch no more workers
	pods    map[types.UID]*podState
	wg      sync.WaitGroup // running workers
}

type podState struct {
	pod        *v1.Pod
	containers map[string]*containerState // by container name
}

// containerState is one running container and its probes.
type containerState struct {
	spec      *v1.Container
	fieldPath string // the container within the pod, for event references
	info      ContainerInfo
	results   map[Kind]result
	workers   map[Kind]*worker
}

// New returns a Manager that runs exec probes through rt and records probe
// events with recorder (nil: no events).
func New(rt Runtime, recorder record.EventRecorder, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	return &Manager{
		log:      log,
		recorder: recorder,
		prober:   newProber(rt),
		updates:  make(chan Update, updateBuffer),
		second:   time.Second,
		pods:     make(map[types.UID]*podState),
	}
}

// Start runs the probe workers until ctx ends, and returns once all of them
// have exited. Containers synced before Start begin probing when it is
// called. Start may be called once.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.ctx != nil {
		m.mu.Unlock()
		return errors.New("prober: manager already started")
	}
	m.ctx = ctx
	for _, ps := range m.pods {
		for _, cs := range ps.containers {
			for _, w := range cs.workers {
				m.launchLocked(w)
			}
		}
	}
	m.mu.Unlock()

	<-ctx.Done()
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// Updates delivers every change of a probe result: readiness turning true or
// false, startup succeeding or failing, liveness failing. The channel is
// never closed. The caller must keep receiving: workers wait while it is
// full. A container's results reset silently when it is replaced (a new
// container ID in Sync): readiness to false, liveness to success, startup to
// not started.
func (m *Manager) Updates() <-chan Update { return m.updates }

// Sync tells the Manager which containers of pod are running now, keyed by
// container name; call it after every pod sync. A container with a new ID
// gets fresh workers and results; a container no longer listed loses its
// workers and results. Only containers of pod.Spec.Containers and sidecar
// init containers (restartPolicy Always) are probed.
func (m *Manager) Sync(pod *v1.Pod, running map[string]ContainerInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := m.pods[pod.UID]
	if ps == nil {
		ps = &podState{containers: make(map[string]*containerState)}
		m.pods[pod.UID] = ps
	}
	ps.pod = pod
	for name, cs := range ps.containers {
		if info, ok := running[name]; !ok || info.ID != cs.info.ID {
			cs.stopLocked()
			delete(ps.containers, name)
		}
	}
	for name, info := range running {
		if cs, ok := ps.containers[name]; ok {
			cs.info = info // the pod IP may have become known
			continue
		}
		if info.ID == "" {
			continue
		}
		spec, fieldPath, ok := findContainer(pod, name)
		if !ok {
			m.log.Debug("running container not in pod spec", "pod", pod.Namespace+"/"+pod.Name, "container", name)
			continue
		}
		cs := &containerState{
			spec:      spec,
			fieldPath: fieldPath,
			info:      info,
			results:   map[Kind]result{Readiness: resultFailure, Liveness: resultSuccess, Startup: resultUnknown},
			workers:   make(map[Kind]*worker),
		}
		ps.containers[name] = cs
		for kind, p := range map[Kind]*v1.Probe{Liveness: spec.LivenessProbe, Readiness: spec.ReadinessProbe, Startup: spec.StartupProbe} {
			if p == nil {
				continue
			}
			w := newWorker(m, pod.UID, cs, kind, p)
			cs.workers[kind] = w
			m.launchLocked(w)
		}
	}
}

// RemovePod stops the probes of a pod and forgets their results.
func (m *Manager) RemovePod(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ps := m.pods[uid]; ps != nil {
		for _, cs := range ps.containers {
			cs.stopLocked()
		}
		delete(m.pods, uid)
	}
}

// Ready reports whether a container is ready: it is running (per the last
// Sync), has started, and has no readiness probe or its readiness probe has
// succeeded successThreshold times in a row since.
func (m *Manager) Ready(uid types.UID, container string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	cs := m.containerLocked(uid, container)
	if cs == nil || !cs.startedLocked() {
		return false
	}
	return cs.spec.ReadinessProbe == nil || cs.results[Readiness] == resultSuccess
}

// Started reports whether a container has started: it is running (per the
// last Sync) and has no startup probe or its startup probe has succeeded.
func (m *Manager) Started(uid types.UID, container string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	cs := m.containerLocked(uid, container)
	return cs != nil && cs.startedLocked()
}

func (m *Manager) containerLocked(uid types.UID, container string) *containerState {
	ps := m.pods[uid]
	if ps == nil {
		return nil
	}
	return ps.containers[container]
}

func (cs *containerState) startedLocked() bool {
	return cs.spec.StartupProbe == nil || cs.results[Startup] == resultSuccess
}

func (cs *containerState) stopLocked() {
	for _, w := range cs.workers {
		if w.cancel != nil {
			w.cancel()
		}
	}
}

// launchLocked starts w's goroutine if the Manager is running.
func (m *Manager) launchLocked(w *worker) {
	if m.ctx == nil || m.stopped || w.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	w.cancel = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer cancel()
		w.run(ctx)
	}()
}

// view is what a worker needs to know about its container at one moment.
type view struct {
	pod     *v1.Pod
	info    ContainerInfo
	started bool
}

// view returns the current state of w's container, or false if w's
// container is gone or replaced.
func (m *Manager) view(w *worker) (view, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cs := m.currentLocked(w)
	if cs == nil {
		return view{}, false
	}
	return view{pod: m.pods[w.podUID].pod, info: cs.info, started: cs.startedLocked()}, true
}

// currentLocked returns the state of w's container if w still belongs to it.
func (m *Manager) currentLocked(w *worker) *containerState {
	cs := m.containerLocked(w.podUID, w.container.Name)
	if cs == nil || cs.info.ID != w.containerID {
		return nil
	}
	return cs
}

// setResult stores a worker's result and reports whether it changed.
func (m *Manager) setResult(w *worker, r result) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	cs := m.currentLocked(w)
	if cs == nil || cs.results[w.kind] == r {
		return false
	}
	cs.results[w.kind] = r
	if w.kind == Startup && r == resultSuccess {
		// The container has started: check readiness now rather than a
		// period later.
		if rw := cs.workers[Readiness]; rw != nil {
			rw.poke()
		}
	}
	return true
}

// findContainer returns the spec of the named container and its field path
// for event references.
func findContainer(pod *v1.Pod, name string) (*v1.Container, string, bool) {
	for i := range pod.Spec.Containers {
		if c := &pod.Spec.Containers[i]; c.Name == name {
			return c, "spec.containers{" + name + "}", true
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.Name == name && c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways {
			return c, "spec.initContainers{" + name + "}", true
		}
	}
	return nil, "", false
}
