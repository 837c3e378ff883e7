package scheduler

import (
	"math/rand/v2"
)

// algorithm makes scheduling decisions over a Cache. It is used by one
// goroutine at a time, which holds the cache's mutex for the decision; its
// buffers are reused between decisions so the hot path does not allocate.
type algorithm struct {
	cache      *Cache
	percentage int32
	nextStart  int
	rng        *rand.Rand

	feasible []*nodeInfo
	failed   []nodeFailure
	total    []int64
	buf      []int64
	okBuf    []bool
}

type nodeFailure struct {
	node *nodeInfo
	st   *status
}

func newAlgorithm(c *Cache, percentage int32) *algorithm {
	return &algorithm{cache: c, percentage: percentage, rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

// decision is the per-pod state of one decision: the cross-node filter
// state built once, then applied per node.
type decision struct {
	pod    *podInfo
	spread *spreadFilter
	aff    *affinityState
	// vol is the pod's volume state; nil without claims.
	vol *volumeState
}

func (a *algorithm) newDecision(p *podInfo) *decision {
	c := a.cache
	d := &decision{
		pod:    p,
		spread: newSpreadFilter(c, p),
		aff:    newAffinityState(p, c),
		vol:    p.volumeState(),
	}
	if d.vol != nil && len(d.vol.rwop) > 0 {
		d.vol.rwopUsers = c.rwopUsersLocked(p.key, d.vol.rwop)
	}
	return d
}

// filter runs every filter for one node in upstream's default order.
func (d *decision) filter(n *nodeInfo) *status {
	if st := filterNode(d.pod, n); st != nil {
		return st
	}
	if d.vol != nil {
		if st := d.vol.filter(n); st != nil {
			return st
		}
	}
	if d.spread != nil {
		if st := d.spread.filter(n); st != nil {
			return st
		}
	}
	if d.aff != nil {
		return d.aff.filter(n)
	}
	return nil
}

// schedule picks a node for p, or returns why none fits. The caller holds
// a.cache.mu. It evaluates nodes from a rotating start and stops once it
// has found numFeasibleNodesToFind feasible ones, as upstream does.
func (a *algorithm) schedule(p *podInfo) (*nodeInfo, *fitError) {
	nodes := a.cache.list
	if len(nodes) == 0 {
		return nil, &fitError{}
	}
	if vs := p.volumeState(); vs != nil && vs.unschedulable != "" {
		return nil, &fitError{numNodes: len(nodes), statuses: map[string]*status{}, preFilter: vs.unschedulable}
	}
	d := a.newDecision(p)
	if name := p.pod.Status.NominatedNodeName; name != "" {
		if n := a.cache.nodes[name]; n != nil && n.node != nil && d.filter(n) == nil {
			return n, nil
		}
	}
	want := numFeasibleNodesToFind(len(nodes), a.percentage)
	a.feasible = a.feasible[:0]
	a.failed = a.failed[:0]
	start := a.nextStart % len(nodes)
	processed := 0
	for i := range nodes {
		n := nodes[(start+i)%len(nodes)]
		processed++
		if st := d.filter(n); st != nil {
			a.failed = append(a.failed, nodeFailure{n, st})
			continue
		}
		a.feasible = append(a.feasible, n)
		if len(a.feasible) >= want {
			break
		}
	}
	a.nextStart = (start + processed) % len(nodes)
	if len(a.feasible) == 0 {
		fe := &fitError{numNodes: len(nodes), statuses: make(map[string]*status, len(a.failed))}
		for _, f := range a.failed {
			fe.statuses[f.node.name] = f.st
		}
		clear(a.failed)
		return nil, fe
	}
	if len(a.feasible) == 1 {
		return a.feasible[0], nil
	}
	a.score(p, a.feasible)
	best, ties := 0, 1
	for i := 1; i < len(a.total); i++ {
		switch {
		case a.total[i] > a.total[best]:
			best, ties = i, 1
		case a.total[i] == a.total[best]:
			ties++
			if a.rng.IntN(ties) == 0 { // reservoir sampling among ties
				best = i
			}
		}
	}
	n := a.feasible[best]
	clear(a.feasible)
	return n, nil
}

// score fills a.total with the weighted, normalised sum of the default
// profile's scores for each node. Plugins that cannot tell the nodes apart
// for this pod (no preferences, no taints, no terms) are skipped.
func (a *algorithm) score(p *podInfo, nodes []*nodeInfo) {
	a.total = resize(a.total, len(nodes))
	a.buf = resize(a.buf, len(nodes))
	for i, n := range nodes {
		a.total[i] = weightLeastAllocated*leastAllocated(p, n) + weightBalanced*balancedAllocation(p, n)
	}
	anyTaint := false
	for i, n := range nodes {
		a.buf[i] = intolerableSoftTaints(p, n)
		anyTaint = anyTaint || a.buf[i] > 0
	}
	if anyTaint {
		a.addNormalized(weightTaintToleration, func(s []int64) { normalizeMax(s, true) })
	}
	if len(p.preferred) > 0 {
		for i, n := range nodes {
			a.buf[i] = preferredNodeAffinity(p, n)
		}
		a.addNormalized(weightNodeAffinity, func(s []int64) { normalizeMax(s, false) })
	}
	if ss := newSpreadScorer(a.cache, p, nodes); ss != nil {
		if cap(a.okBuf) < len(nodes) {
			a.okBuf = make([]bool, len(nodes))
		}
		ok := a.okBuf[:len(nodes)]
		for i, n := range nodes {
			a.buf[i], ok[i] = ss.score(n)
		}
		normalizeSpread(a.buf, ok)
		a.addNormalized(weightSpread, nil)
	}
	if as := newAffinityScores(p, a.cache); as != nil {
		for i, n := range nodes {
			a.buf[i] = as.score(n)
		}
		a.addNormalized(weightInterPod, normalizeMinMax)
	}
}

func (a *algorithm) addNormalized(weight int64, normalize func([]int64)) {
	if normalize != nil {
		normalize(a.buf)
	}
	for i, s := range a.buf {
		a.total[i] += weight * s
	}
}

func resize(s []int64, n int) []int64 {
	if cap(s) < n {
		return make([]int64, n)
	}
	return s[:n]
}
