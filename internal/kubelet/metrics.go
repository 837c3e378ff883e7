package kubelet

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The kubelet's own metrics carry upstream's names, types, labels, buckets
// and help texts (pkg/kubelet/metrics), including the "[ALPHA] " prefix
// that upstream's metrics library puts before the help of alpha metrics,
// so that dashboards and alerts written for upstream's kubelet work. No
// label names a pod: their cardinality is bounded whatever the node runs.
//
// Where skiff differs: kubelet_running_containers sets every state on each
// relist, 0 included (upstream leaves a state that drops to none at its last
// count); kubelet_pod_worker_duration_seconds has the operation_type values
// create, update, sync and kill but not terminated, as skiff's pod workers
// have no separate terminated step.

// podStartupDurationBuckets are upstream's buckets for pod startup
// latency, in seconds.
var podStartupDurationBuckets = []float64{0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600}

// kubeletMetrics are the kubelet's instruments. They exist whether or not
// they are registered, so the code that observes never checks.
type kubeletMetrics struct {
	runningPods       prometheus.Gauge
	runningContainers *prometheus.GaugeVec
	relistDuration    prometheus.Histogram
	relistInterval    prometheus.Histogram
	podStartDuration  prometheus.Histogram
	podWorkerDuration *prometheus.HistogramVec
}

// newKubeletMetrics makes the kubelet's metrics and registers them, with
// kubelet_node_name, on reg unless it is nil. Registering twice on one
// registry is an error.
func newKubeletMetrics(reg prometheus.Registerer, node string) (*kubeletMetrics, error) {
	nodeName := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kubelet_node_name",
		Help: "[ALPHA] The node's name. The count is always 1.",
	}, []string{"node"})
	nodeName.WithLabelValues(node).Set(1)
	m := &kubeletMetrics{
		runningPods: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kubelet_running_pods",
			Help: "[ALPHA] Number of pods that have a running pod sandbox",
		}),
		runningContainers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kubelet_running_containers",
			Help: "[ALPHA] Number of containers currently running",
		}, []string{"container_state"}),
		relistDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kubelet_pleg_relist_duration_seconds",
			Help:    "[ALPHA] Duration in seconds for relisting pods in PLEG.",
			Buckets: prometheus.DefBuckets,
		}),
		relistInterval: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kubelet_pleg_relist_interval_seconds",
			Help:    "[ALPHA] Interval in seconds between relisting in PLEG.",
			Buckets: prometheus.DefBuckets,
		}),
		podStartDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kubelet_pod_start_duration_seconds",
			Help:    "[ALPHA] Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
			Buckets: podStartupDurationBuckets,
		}),
		podWorkerDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kubelet_pod_worker_duration_seconds",
			Help:    "[ALPHA] Duration in seconds to sync a single pod. Broken down by operation type: create, update, or sync",
			Buckets: prometheus.DefBuckets,
		}, []string{"operation_type"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{nodeName, m.runningPods, m.runningContainers,
		m.relistDuration, m.relistInterval, m.podStartDuration, m.podWorkerDuration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("kubelet: registering metrics: %w", err)
		}
	}
	return m, nil
}

// containerStates are kubelet_running_containers' container_state values:
// upstream's names of the CRI states.
var containerStates = map[runtimeapi.ContainerState]string{
	runtimeapi.ContainerState_CONTAINER_CREATED: "created",
	runtimeapi.ContainerState_CONTAINER_RUNNING: "running",
	runtimeapi.ContainerState_CONTAINER_EXITED:  "exited",
	runtimeapi.ContainerState_CONTAINER_UNKNOWN: "unknown",
}

// runtimeCounts is what one relist says for kubelet_running_pods and
// kubelet_running_containers, counted as upstream's PLEG counts: pods with
// a ready sandbox, and every container the kubelet made by state (exited
// ones too, until they are removed). Objects without the kubelet's pod
// label are not the kubelet's and are not counted.
func runtimeCounts(sbs []*runtimeapi.PodSandbox, cs []*runtimeapi.Container) (pods int, states map[string]int) {
	ready := map[string]bool{}
	for _, s := range sbs {
		if uid := s.GetLabels()[labelPodUID]; uid != "" && s.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			ready[uid] = true
		}
	}
	states = map[string]int{}
	for _, name := range containerStates {
		states[name] = 0
	}
	for _, c := range cs {
		if c.GetLabels()[labelPodUID] == "" {
			continue
		}
		name, ok := containerStates[c.GetState()]
		if !ok {
			name = "unknown"
		}
		states[name]++
	}
	return len(ready), states
}

// setRuntimeCounts publishes a relist's runtimeCounts.
func (m *kubeletMetrics) setRuntimeCounts(sbs []*runtimeapi.PodSandbox, cs []*runtimeapi.Container) {
	pods, states := runtimeCounts(sbs, cs)
	m.runningPods.Set(float64(pods))
	for state, n := range states {
		m.runningContainers.WithLabelValues(state).Set(float64(n))
	}
}

// Why a pod waits for a sync: kubelet_pod_worker_duration_seconds'
// operation_type, as upstream names its pod updates.
const (
	workSync   = "sync"   // periodic resync, runtime change, probe result, retry
	workUpdate = "update" // the pod changed in the API
	workCreate = "create" // the pod is new to this kubelet
	workKill   = "kill"   // the pod is gone from the API
)

// workRank orders the reasons when several arrive before one sync: the
// sync is counted under the weightiest.
var workRank = map[string]int{workSync: 0, workUpdate: 1, workCreate: 2, workKill: 3}

// enqueue queues a sync of uid for reason op.
func (k *Kubelet) enqueue(uid types.UID, op string) {
	k.mu.Lock()
	k.noteWorkLocked(uid, op)
	k.mu.Unlock()
	k.queue.Add(uid)
}

// noteWorkLocked records that uid waits for a sync for reason op, keeping
// the weightiest reason since its last sync began. k.mu is held.
func (k *Kubelet) noteWorkLocked(uid types.UID, op string) {
	if w, ok := k.work[uid]; !ok || workRank[op] > workRank[w] {
		k.work[uid] = op
	}
}

// takeWork returns why uid waited, as its sync begins; a sync nobody
// noted (a delayed or rate-limited retry) is a sync.
func (k *Kubelet) takeWork(uid types.UID) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	w, ok := k.work[uid]
	if !ok {
		return workSync
	}
	delete(k.work, uid)
	return w
}
