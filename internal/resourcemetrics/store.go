package resourcemetrics

import (
	"sync/atomic"

	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// Store holds the latest usage of every node and pod scraped; safe for
// concurrent use.
//
// It holds one immutable snapshot, replaced whole at the end of each
// scrape pass, so reads take no lock and a LIST that calls Pod for every
// pod sees one pass throughout unless a pass ends in the middle.
//
// The zero Store is empty and ready to use.
type Store struct {
	snap atomic.Pointer[snapshot]
}

type snapshot struct {
	nodes map[string]*metricsv1beta1.NodeMetrics
	pods  map[podKey]*metricsv1beta1.PodMetrics
}

type podKey struct{ namespace, name string }

// NewStore returns an empty Store.
func NewStore() *Store { return &Store{} }

// Node returns the metrics of the named node, false when it has none:
// the node is unknown, its last scrape failed, or it has not yet been
// scraped twice (CPU usage is a rate between two readings).
//
// The result carries Name, Timestamp (of the later CPU reading), Window
// (between the two readings) and Usage (cpu, memory). TypeMeta, labels and
// creationTimestamp are empty: the caller fills them from the Node. Usage
// shares its map with the Store: treat it as read-only, and DeepCopy
// before changing it.
func (s *Store) Node(name string) (metricsv1beta1.NodeMetrics, bool) {
	snap := s.snap.Load()
	if snap == nil {
		return metricsv1beta1.NodeMetrics{}, false
	}
	m, ok := snap.nodes[name]
	if !ok {
		return metricsv1beta1.NodeMetrics{}, false
	}
	return *m, true
}

// Pod returns the metrics of one pod, false when it has none: the pod is
// unknown, its node's last scrape failed, or one of the containers its
// kubelet lists lacks CPU usage or memory.
//
// The result carries Name, Namespace, Timestamp and Window (of the
// container with the earliest reading) and Containers sorted by name,
// each with Usage (cpu, memory). TypeMeta, labels and creationTimestamp
// are empty: the caller fills them from the Pod. Containers and their
// Usage maps are shared with the Store: treat them as read-only, and
// DeepCopy before changing them.
func (s *Store) Pod(namespace, name string) (metricsv1beta1.PodMetrics, bool) {
	snap := s.snap.Load()
	if snap == nil {
		return metricsv1beta1.PodMetrics{}, false
	}
	m, ok := snap.pods[podKey{namespace, name}]
	if !ok {
		return metricsv1beta1.PodMetrics{}, false
	}
	return *m, true
}

// Len returns how many nodes and pods have metrics.
func (s *Store) Len() (nodes, pods int) {
	snap := s.snap.Load()
	if snap == nil {
		return 0, 0
	}
	return len(snap.nodes), len(snap.pods)
}

// replace publishes the shares of the given nodes as the Store's content.
func (s *Store) replace(nodes []*nodeState) {
	var nn, np int
	for _, n := range nodes {
		if n.pub.node != nil {
			nn++
		}
		np += len(n.pub.pods)
	}
	snap := &snapshot{
		nodes: make(map[string]*metricsv1beta1.NodeMetrics, nn),
		pods:  make(map[podKey]*metricsv1beta1.PodMetrics, np),
	}
	for _, n := range nodes {
		if n.pub.node != nil {
			snap.nodes[n.name] = n.pub.node
		}
		for _, p := range n.pub.pods {
			snap.pods[podKey{p.Namespace, p.Name}] = p
		}
	}
	s.snap.Store(snap)
}
