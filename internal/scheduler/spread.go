package scheduler

import (
	"math"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// spreadConstraint is a compiled TopologySpreadConstraint.
type spreadConstraint struct {
	maxSkew       int64
	key           string
	selector      labels.Selector
	minDomains    int
	honorAffinity bool // nodeAffinityPolicy Honor (the default)
	honorTaints   bool // nodeTaintsPolicy Honor (default Ignore)
	selfMatch     int  // 1 if the pod matches its own selector
}

func compileSpread(pod *v1.Pod, c *v1.TopologySpreadConstraint) spreadConstraint {
	sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
	if err != nil {
		sel = labels.Nothing()
	}
	for _, k := range c.MatchLabelKeys {
		if v, ok := pod.Labels[k]; ok {
			sel = addRequirement(sel, k, selection.In, v)
		}
	}
	out := spreadConstraint{
		maxSkew:       int64(c.MaxSkew),
		key:           c.TopologyKey,
		selector:      sel,
		minDomains:    1,
		honorAffinity: c.NodeAffinityPolicy == nil || *c.NodeAffinityPolicy == v1.NodeInclusionPolicyHonor,
		honorTaints:   c.NodeTaintsPolicy != nil && *c.NodeTaintsPolicy == v1.NodeInclusionPolicyHonor,
	}
	if c.MinDomains != nil && *c.MinDomains > 0 {
		out.minDomains = int(*c.MinDomains)
	}
	if sel.Matches(labels.Set(pod.Labels)) {
		out.selfMatch = 1
	}
	return out
}

// spreadCounts is, per constraint, how many matching pods each topology
// domain holds over the nodes the constraint counts. With requireAll (a
// pod's own constraints) a node counts only if it carries every
// constraint's key and passes the inclusion policies; without it (the
// system defaults) a node counts for each constraint whose key it carries
// and whose policies it passes. Domains are the cache's topology index
// ids, so per-node work is slice indexing. A constraint marked perNode is
// not summed by domain: its count is read from the node itself (upstream
// scores kubernetes.io/hostname that way).
type spreadCounts struct {
	constraints []spreadConstraint
	requireAll  bool
	idx         []*matchIndex
	perNode     []bool
	topo        []*topologyIndex
	counts      [][]int64 // [constraint][domain]; shared with the cache, read only
	present     [][]bool  // [constraint][domain]: some counted node is in it; nil: all are
	numDomains  []int
}

func newSpreadCounts(c *Cache, p *podInfo, constraints []spreadConstraint, requireAll, hostnamePerNode bool) *spreadCounts {
	if len(constraints) == 0 {
		return nil
	}
	k := len(constraints)
	s := &spreadCounts{constraints: constraints, requireAll: requireAll, idx: make([]*matchIndex, k), perNode: make([]bool, k),
		topo: make([]*topologyIndex, k), counts: make([][]int64, k), present: make([][]bool, k), numDomains: make([]int, k)}
	// A constraint counts every node carrying its key when no other key
	// is required of the node and no inclusion policy excludes any: then
	// the cache's incrementally kept per-domain counts are exact and no
	// node needs visiting. Otherwise the nodes are scanned.
	keyOnly := !requireAll || k == 1
	noAffinity := p.nodeSelector == nil && p.required == nil
	var scan []bool
	for i := range constraints {
		ci := &constraints[i]
		s.idx[i] = c.matchIndexLocked(p.namespace, ci.selector)
		s.topo[i] = c.topologyLocked(ci.key)
		s.perNode[i] = hostnamePerNode && ci.key == v1.LabelHostname
		switch {
		case s.perNode[i]:
		case keyOnly && !ci.honorTaints && (!ci.honorAffinity || noAffinity):
			s.counts[i] = c.domainCountsLocked(s.idx[i], ci.key).counts
			s.numDomains[i] = len(s.topo[i].names)
		default:
			if scan == nil {
				scan = make([]bool, k)
			}
			scan[i] = true
			s.counts[i] = make([]int64, len(s.topo[i].names))
			s.present[i] = make([]bool, len(s.topo[i].names))
		}
	}
	if scan == nil {
		return s
	}
	for j, n := range c.list {
		if requireAll && !spreadEligible(p, constraints, n) {
			continue
		}
		for i := range constraints {
			if !scan[i] {
				continue
			}
			d := s.topo[i].domainOf[j]
			if d < 0 || (!requireAll && !spreadIncludes(p, &constraints[i], n)) {
				continue
			}
			s.present[i][d] = true
			if cnt, ok := s.idx[i].perNode[n]; ok {
				s.counts[i][d] += cnt
			}
		}
	}
	for i := range constraints {
		if scan[i] {
			for _, ok := range s.present[i] {
				if ok {
					s.numDomains[i]++
				}
			}
		}
	}
	return s
}

// isPresent reports whether domain d of constraint i holds a counted node.
func (s *spreadCounts) isPresent(i, d int) bool {
	return s.present[i] == nil || s.present[i][d]
}

// domain returns n's domain id for constraint i, or -1 if n lacks the key.
func (s *spreadCounts) domain(i int, n *nodeInfo) int32 {
	t := s.topo[i]
	if n.index < 0 || n.index >= len(t.domainOf) {
		if v, ok := n.labels[s.constraints[i].key]; ok {
			if d, ok := t.ids[v]; ok {
				return d
			}
		}
		return -1
	}
	return t.domainOf[n.index]
}

// count is the matching pods in n's domain d for constraint i.
func (s *spreadCounts) count(i int, d int32, n *nodeInfo) int64 {
	if d < 0 {
		return 0
	}
	if s.perNode[i] {
		return s.idx[i].perNode[n]
	}
	return s.counts[i][d]
}

func spreadEligible(p *podInfo, constraints []spreadConstraint, n *nodeInfo) bool {
	for i := range constraints {
		c := &constraints[i]
		if _, ok := n.labels[c.key]; !ok {
			return false
		}
		if !spreadIncludes(p, c, n) {
			return false
		}
	}
	return true
}

// spreadIncludes applies c's node inclusion policies to n.
func spreadIncludes(p *podInfo, c *spreadConstraint, n *nodeInfo) bool {
	if c.honorAffinity && !p.matchesNodeSelector(n.name, n.labels) {
		return false
	}
	if c.honorTaints {
		for j := range n.hardTaints {
			if !tolerates(p.tolerations, &n.hardTaints[j]) {
				return false
			}
		}
	}
	return true
}

// spreadFilter is PodTopologySpread's filter over the DoNotSchedule
// constraints: placing the pod on n must keep every skew within maxSkew.
type spreadFilter struct {
	*spreadCounts
	minMatch []int64
}

func newSpreadFilter(c *Cache, p *podInfo) *spreadFilter {
	sc := newSpreadCounts(c, p, p.hardSpread, true, false)
	if sc == nil {
		return nil
	}
	f := &spreadFilter{spreadCounts: sc, minMatch: make([]int64, len(sc.constraints))}
	for i, counts := range sc.counts {
		if sc.numDomains[i] < sc.constraints[i].minDomains {
			continue // fewer domains than minDomains: the global minimum is 0
		}
		first := true
		for d, c := range counts {
			if sc.isPresent(i, d) && (first || c < f.minMatch[i]) {
				f.minMatch[i] = c
				first = false
			}
		}
	}
	return f
}

func (f *spreadFilter) filter(n *nodeInfo) *status {
	for i := range f.constraints {
		c := &f.constraints[i]
		d := f.domain(i, n)
		if d < 0 {
			return statusSpreadNoLabel
		}
		if f.count(i, d, n)+int64(c.selfMatch)-f.minMatch[i] > c.maxSkew {
			return statusSpread
		}
	}
	return nil
}

// spreadScorer is PodTopologySpread's score over the ScheduleAnyway
// constraints (the pod's own, or the system defaults): fewer matching pods
// in the node's domains is better.
type spreadScorer struct {
	*spreadCounts
	weights []float64
}

// newSpreadScorer prepares the score of p over the feasible nodes. As
// upstream, each constraint is weighted by log(2 + the number of domains
// among the feasible nodes), counting every feasible node as a domain for
// kubernetes.io/hostname. A system default constraint whose key no node
// carries is dropped.
func newSpreadScorer(c *Cache, p *podInfo, nodes []*nodeInfo) *spreadScorer {
	constraints := p.softSpread
	if p.spreadDefaulted {
		constraints = withTopology(c, constraints)
	}
	sc := newSpreadCounts(c, p, constraints, !p.spreadDefaulted, true)
	if sc == nil {
		return nil
	}
	s := &spreadScorer{spreadCounts: sc, weights: make([]float64, len(sc.constraints))}
	sizes := make([]int, len(sc.constraints))
	seen := make([][]bool, len(sc.constraints))
	for i := range sc.constraints {
		if !sc.perNode[i] {
			seen[i] = make([]bool, len(sc.topo[i].names)+1) // last: nodes without the key
		}
	}
	for _, n := range nodes {
		if sc.requireAll && !hasKeys(sc.constraints, n) {
			continue // ignored: scores 0
		}
		for i := range sc.constraints {
			if sc.perNode[i] {
				sizes[i]++
				continue
			}
			d := sc.domain(i, n)
			if d < 0 {
				d = int32(len(seen[i]) - 1)
			}
			if !seen[i][d] {
				seen[i][d] = true
				sizes[i]++
			}
		}
	}
	for i := range sizes {
		s.weights[i] = math.Log(float64(sizes[i] + 2))
	}
	return s
}

// withTopology returns the constraints whose key some listed node
// carries, reusing the slice when none is dropped.
func withTopology(c *Cache, constraints []spreadConstraint) []spreadConstraint {
	keep := 0
	for i := range constraints {
		if len(c.topologyLocked(constraints[i].key).names) > 0 {
			keep++
		}
	}
	if keep == len(constraints) {
		return constraints
	}
	out := make([]spreadConstraint, 0, keep)
	for i := range constraints {
		if len(c.topologyLocked(constraints[i].key).names) > 0 {
			out = append(out, constraints[i])
		}
	}
	return out
}

func hasKeys(constraints []spreadConstraint, n *nodeInfo) bool {
	for i := range constraints {
		if _, ok := n.labels[constraints[i].key]; !ok {
			return false
		}
	}
	return true
}

// score returns the raw score (lower is better). For a pod's own
// constraints, a node that lacks a constraint's key returns false and gets
// the minimum normalised score; with the system defaults, a constraint
// whose key the node lacks adds nothing, as upstream.
func (s *spreadScorer) score(n *nodeInfo) (int64, bool) {
	var total float64
	for i := range s.constraints {
		c := &s.constraints[i]
		d := s.domain(i, n)
		if d < 0 {
			if s.requireAll {
				return 0, false
			}
			continue
		}
		total += float64(s.count(i, d, n))*s.weights[i] + float64(c.maxSkew-1)
	}
	return int64(math.Round(total)), true
}
