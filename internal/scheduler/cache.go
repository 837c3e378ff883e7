package scheduler

import (
	"maps"
	"slices"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// nodeInfo is one node and what the pods on it (bound, assumed) use, in
// the integer units the filters compare.
type nodeInfo struct {
	name string
	// node is nil for a placeholder: pods the informer reported on a node
	// it has not reported (yet, or any more). Placeholders are not in the
	// cache's node list and never get pods scheduled to them.
	node          *v1.Node
	labels        labels.Set
	unschedulable bool
	hardTaints    []v1.Taint // NoSchedule and NoExecute
	softTaints    []v1.Taint // PreferNoSchedule

	alloc     resources
	allocPods int64

	requested  resources
	nonZeroCPU int64
	nonZeroMem int64
	pods       []*podInfo
	ports      []hostPort
	// nominated are pods that preempted others on this node and wait for
	// the victims to go; lower-priority pods may not take their room.
	nominated []*podInfo

	index int // position in cache.list, -1 when not listed
}

func (n *nodeInfo) setNode(node *v1.Node) {
	n.node = node
	n.labels = labels.Set(node.Labels)
	n.unschedulable = node.Spec.Unschedulable
	n.hardTaints, n.softTaints = nil, nil
	for _, t := range node.Spec.Taints {
		switch t.Effect {
		case v1.TaintEffectNoSchedule, v1.TaintEffectNoExecute:
			n.hardTaints = append(n.hardTaints, t)
		case v1.TaintEffectPreferNoSchedule:
			n.softTaints = append(n.softTaints, t)
		}
	}
	n.alloc = resourcesOf(node.Status.Allocatable)
	n.allocPods = 0
	if q, ok := node.Status.Allocatable[v1.ResourcePods]; ok {
		n.allocPods = q.Value()
	}
}

func (n *nodeInfo) addPod(p *podInfo) {
	n.pods = append(n.pods, p)
	n.requested.add(&p.res, 1)
	n.nonZeroCPU += p.nonZeroCPU
	n.nonZeroMem += p.nonZeroMem
	n.ports = append(n.ports, p.ports...)
}

func (n *nodeInfo) removePod(key string) bool {
	for i, p := range n.pods {
		if p.key != key {
			continue
		}
		last := len(n.pods) - 1
		n.pods[i] = n.pods[last]
		n.pods[last] = nil
		n.pods = n.pods[:last]
		n.requested.add(&p.res, -1)
		n.nonZeroCPU -= p.nonZeroCPU
		n.nonZeroMem -= p.nonZeroMem
		for _, hp := range p.ports {
			for j, np := range n.ports {
				if np == hp {
					n.ports = append(n.ports[:j], n.ports[j+1:]...)
					break
				}
			}
		}
		return true
	}
	return false
}

// clone copies the accounting (not the pods themselves) for preemption's
// what-if evaluation.
func (n *nodeInfo) clone() *nodeInfo {
	c := *n
	c.pods = append([]*podInfo(nil), n.pods...)
	c.ports = append([]hostPort(nil), n.ports...)
	c.requested.scalar = nil
	c.requested.add(&resources{scalar: n.requested.scalar}, 1)
	return &c
}

// cachedPod is a pod the cache accounts on a node.
type cachedPod struct {
	info    *podInfo
	node    string
	assumed bool // decided here, binding not yet confirmed by the informer
}

// Cache is the scheduler's view of nodes and the pods on them. One mutex
// guards it: the informer handlers and bind workers take it briefly, the
// decision loop holds it for one decision.
type Cache struct {
	mu        sync.Mutex
	nodes     map[string]*nodeInfo
	list      []*nodeInfo // nodes with a Node object, for the rotating scan
	pods      map[string]*cachedPod
	nominated map[string]string // pod key -> node
	// affinityPods are the cached pods with inter-pod (anti-)affinity: a
	// decision for a pod without terms of its own visits only these, and
	// skips the plugin entirely when there are none.
	affinityPods map[string]*cachedPod
	// claimUsers are the cached pods by the claims (namespace/name) their
	// persistentVolumeClaim volumes name, for ReadWriteOncePod.
	claimUsers map[string][]*cachedPod
	// nsLabels returns a namespace's labels for namespaceSelector terms;
	// nil means namespaces have no labels.
	nsLabels func(string) labels.Set

	matchIndexes map[string]*matchIndex
	useClock     int64
	// topologies are the topology indexes by label key; nodeGen changes
	// whenever the node list or a node's labels do, invalidating them.
	topologies map[string]*topologyIndex
	nodeGen    int64
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{nodes: map[string]*nodeInfo{}, pods: map[string]*cachedPod{}, affinityPods: map[string]*cachedPod{}, claimUsers: map[string][]*cachedPod{}, nominated: map[string]string{}}
}

func (c *Cache) nodeLocked(name string) *nodeInfo {
	n := c.nodes[name]
	if n == nil {
		n = &nodeInfo{name: name, index: -1}
		c.nodes[name] = n
	}
	return n
}

// SetNode adds or updates a node.
func (c *Cache) SetNode(node *v1.Node) {
	if node == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodeLocked(node.Name)
	if n.node == nil || !maps.Equal(n.node.Labels, node.Labels) {
		c.nodeGen++
	}
	n.setNode(node)
	if n.index < 0 {
		n.index = len(c.list)
		c.list = append(c.list, n)
	}
}

// RemoveNode removes a node; its pods stay accounted on a placeholder
// until the informer removes them.
func (c *Cache) RemoveNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[name]
	if n == nil {
		return
	}
	c.nodeGen++
	if n.index >= 0 {
		last := len(c.list) - 1
		c.list[n.index] = c.list[last]
		c.list[n.index].index = n.index
		c.list[last] = nil
		c.list = c.list[:last]
		n.index = -1
	}
	n.node = nil
	if len(n.pods) == 0 && len(n.nominated) == 0 {
		delete(c.nodes, name)
	}
}

func (c *Cache) addLocked(p *podInfo, node string, assumed bool) {
	c.removeLocked(p.key)
	n := c.nodeLocked(node)
	n.addPod(p)
	cp := &cachedPod{info: p, node: node, assumed: assumed}
	c.pods[p.key] = cp
	for _, m := range c.matchIndexes {
		m.update(p, n, 1)
	}
	if p.affinity != nil {
		c.affinityPods[p.key] = cp
	}
	if p.claims != nil {
		for _, k := range p.claims.keys {
			c.claimUsers[k] = append(c.claimUsers[k], cp)
		}
	}
	c.clearNominatedLocked(p.key)
}

func (c *Cache) removeLocked(key string) *cachedPod {
	cp := c.pods[key]
	if cp == nil {
		return nil
	}
	delete(c.pods, key)
	n := c.nodes[cp.node]
	for _, m := range c.matchIndexes {
		m.update(cp.info, n, -1)
	}
	if cp.info.affinity != nil {
		delete(c.affinityPods, key)
	}
	if cp.info.claims != nil {
		for _, k := range cp.info.claims.keys {
			users := slices.DeleteFunc(c.claimUsers[k], func(u *cachedPod) bool { return u == cp })
			if len(users) == 0 {
				delete(c.claimUsers, k)
			} else {
				c.claimUsers[k] = users
			}
		}
	}
	if n != nil {
		n.removePod(key)
		if n.node == nil && len(n.pods) == 0 && len(n.nominated) == 0 {
			delete(c.nodes, cp.node)
		}
	}
	return cp
}

// SetPod adds or updates a bound pod as the informer reports it, which
// confirms an assumed pod.
func (c *Cache) SetPod(pod *v1.Pod) {
	if pod == nil || pod.Spec.NodeName == "" {
		return
	}
	p := newPodInfo(pod)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(p, pod.Spec.NodeName, false)
}

// RemovePod forgets a pod (deleted, or terminal so it no longer uses its
// node), including its nomination.
func (c *Cache) RemovePod(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(key)
	c.clearNominatedLocked(key)
}

// assumeLocked accounts p on node before the binding is confirmed.
func (c *Cache) assumeLocked(p *podInfo, node string) { c.addLocked(p, node, true) }

// Forget drops an assumed pod whose binding failed. A pod the informer
// already confirmed is left alone.
func (c *Cache) Forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cp := c.pods[key]; cp != nil && cp.assumed {
		c.removeLocked(key)
	}
}

// isPlacedLocked reports whether the cache already places the pod
// (assumed or bound).
func (c *Cache) isPlacedLocked(key string) bool { return c.pods[key] != nil }

// Nominate records that p waits for room on node after preempting; node ""
// clears the nomination.
func (c *Cache) Nominate(p *podInfo, node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nominateLocked(p, node)
}

func (c *Cache) nominateLocked(p *podInfo, node string) {
	if old, ok := c.nominated[p.key]; ok && old == node {
		// Refresh the stored info (priority or requests may have changed).
		n := c.nodes[node]
		for i, q := range n.nominated {
			if q.key == p.key {
				n.nominated[i] = p
			}
		}
		return
	}
	c.clearNominatedLocked(p.key)
	if node == "" || c.pods[p.key] != nil {
		return
	}
	n := c.nodeLocked(node)
	n.nominated = append(n.nominated, p)
	c.nominated[p.key] = node
}

func (c *Cache) clearNominatedLocked(key string) {
	node, ok := c.nominated[key]
	if !ok {
		return
	}
	delete(c.nominated, key)
	n := c.nodes[node]
	if n == nil {
		return
	}
	for i, q := range n.nominated {
		if q.key == key {
			n.nominated = append(n.nominated[:i], n.nominated[i+1:]...)
			break
		}
	}
	if n.node == nil && len(n.pods) == 0 && len(n.nominated) == 0 {
		delete(c.nodes, node)
	}
}

// NodeCount is the number of nodes with a Node object.
func (c *Cache) NodeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.list)
}
