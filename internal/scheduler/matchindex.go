package scheduler

import (
	"k8s.io/apimachinery/pkg/labels"
)

// maxMatchIndexes bounds how many selectors the cache keeps counts for;
// the least recently used is dropped beyond it.
const maxMatchIndexes = 64

// matchIndex counts, per node, the cached pods of one namespace that match
// one label selector and are not terminating: what topology spread counts.
// The cache keeps it up to date on every pod add and remove, so a decision
// for a spread-constrained pod sums per-node counts instead of matching the
// selector against every pod in the cluster.
type matchIndex struct {
	namespace string
	sel       labels.Selector
	perNode   map[*nodeInfo]int64
	lastUsed  int64
	// byKey sums perNode by the domains of a topology key, over the listed
	// nodes, for the spread constraints that count every node carrying the
	// key; built on first use and kept up to date by update.
	byKey map[string]*domainCounts
}

// domainCounts is a matchIndex's count per domain of one topology index.
// It is valid while topo is the cache's current index for its key; when
// the node list or labels change, the next use rebuilds it.
type domainCounts struct {
	topo   *topologyIndex
	counts []int64
}

func (m *matchIndex) update(p *podInfo, node *nodeInfo, sign int64) {
	if node == nil || p.namespace != m.namespace || p.pod.DeletionTimestamp != nil || !m.sel.Matches(p.labels) {
		return
	}
	m.perNode[node] += sign
	if m.perNode[node] == 0 {
		delete(m.perNode, node)
	}
	for _, dc := range m.byKey {
		// A stale topology index may map the position wrongly; it is
		// rebuilt before its next use, so the count is never read.
		if node.index >= 0 && node.index < len(dc.topo.domainOf) {
			if d := dc.topo.domainOf[node.index]; d >= 0 {
				dc.counts[d] += sign
			}
		}
	}
}

// domainCountsLocked returns m's counts per domain of key over the listed
// nodes. The caller holds c.mu and must not modify the counts.
func (c *Cache) domainCountsLocked(m *matchIndex, key string) *domainCounts {
	t := c.topologyLocked(key)
	if dc, ok := m.byKey[key]; ok && dc.topo == t {
		return dc
	}
	dc := &domainCounts{topo: t, counts: make([]int64, len(t.names))}
	for n, cnt := range m.perNode {
		if n.index >= 0 && n.index < len(t.domainOf) && c.list[n.index] == n {
			if d := t.domainOf[n.index]; d >= 0 {
				dc.counts[d] += cnt
			}
		}
	}
	if m.byKey == nil {
		m.byKey = map[string]*domainCounts{}
	}
	m.byKey[key] = dc
	return dc
}

// matchIndexLocked returns the index for pods of namespace matching sel,
// building it from the cached pods the first time. The caller holds c.mu.
func (c *Cache) matchIndexLocked(namespace string, sel labels.Selector) *matchIndex {
	c.useClock++
	key := namespace + "\x00" + sel.String()
	if m, ok := c.matchIndexes[key]; ok {
		m.lastUsed = c.useClock
		return m
	}
	if c.matchIndexes == nil {
		c.matchIndexes = map[string]*matchIndex{}
	}
	if len(c.matchIndexes) >= maxMatchIndexes {
		var oldest string
		var at int64
		for k, m := range c.matchIndexes {
			if oldest == "" || m.lastUsed < at {
				oldest, at = k, m.lastUsed
			}
		}
		delete(c.matchIndexes, oldest)
	}
	m := &matchIndex{namespace: namespace, sel: sel, perNode: map[*nodeInfo]int64{}, lastUsed: c.useClock}
	for _, cp := range c.pods {
		m.update(cp.info, c.nodes[cp.node], 1)
	}
	c.matchIndexes[key] = m
	return m
}

// topologyIndex numbers the values of one node label key (the topology
// domains) and records each listed node's domain, by its position in the
// cache's node list; -1 for a node without the key. It is rebuilt only
// when the node list or a node's labels change, not on status heartbeats.
type topologyIndex struct {
	gen      int64
	domainOf []int32
	names    []string
	ids      map[string]int32
}

// topologyLocked returns the up-to-date index for key. The caller holds c.mu.
func (c *Cache) topologyLocked(key string) *topologyIndex {
	if t, ok := c.topologies[key]; ok && t.gen == c.nodeGen {
		return t
	}
	if c.topologies == nil {
		c.topologies = map[string]*topologyIndex{}
	}
	t := &topologyIndex{gen: c.nodeGen, domainOf: make([]int32, len(c.list)), ids: map[string]int32{}}
	for i, n := range c.list {
		v, ok := n.labels[key]
		if !ok {
			t.domainOf[i] = -1
			continue
		}
		id, ok := t.ids[v]
		if !ok {
			id = int32(len(t.names))
			t.ids[v] = id
			t.names = append(t.names, v)
		}
		t.domainOf[i] = id
	}
	c.topologies[key] = t
	return t
}
