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
// domain holds, over the nodes the constraints count (nodes carrying every
// constraint's key and passing the inclusion policies). Domains are the
// cache's topology index ids, so per-node work is slice indexing.
type spreadCounts struct {
	constraints []spreadConstraint
	topo        []*topologyIndex
	counts      [][]int64 // [constraint][domain]
	present     [][]bool  // [constraint][domain]: some counted node is in it
	numDomains  []int
}

func newSpreadCounts(c *Cache, p *podInfo, constraints []spreadConstraint) *spreadCounts {
	if len(constraints) == 0 {
		return nil
	}
	k := len(constraints)
	s := &spreadCounts{constraints: constraints, topo: make([]*topologyIndex, k), counts: make([][]int64, k), present: make([][]bool, k), numDomains: make([]int, k)}
	idx := make([]*matchIndex, k)
	for i := range constraints {
		idx[i] = c.matchIndexLocked(p.namespace, constraints[i].selector)
		s.topo[i] = c.topologyLocked(constraints[i].key)
		s.counts[i] = make([]int64, len(s.topo[i].names))
		s.present[i] = make([]bool, len(s.topo[i].names))
	}
	simple := k == 1 && !constraints[0].honorTaints && (!constraints[0].honorAffinity || (p.nodeSelector == nil && p.required == nil))
	for j, n := range c.list {
		if !simple && !spreadEligible(p, constraints, n) {
			continue
		}
		for i := range constraints {
			d := s.topo[i].domainOf[j]
			if d < 0 {
				continue
			}
			s.present[i][d] = true
			if cnt, ok := idx[i].perNode[n]; ok {
				s.counts[i][d] += cnt
			}
		}
	}
	for i := range constraints {
		for _, ok := range s.present[i] {
			if ok {
				s.numDomains[i]++
			}
		}
	}
	return s
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

func (s *spreadCounts) count(i int, d int32) int64 {
	if d < 0 {
		return 0
	}
	return s.counts[i][d]
}

func spreadEligible(p *podInfo, constraints []spreadConstraint, n *nodeInfo) bool {
	for i := range constraints {
		c := &constraints[i]
		if _, ok := n.labels[c.key]; !ok {
			return false
		}
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
	sc := newSpreadCounts(c, p, p.hardSpread)
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
			if sc.present[i][d] && (first || c < f.minMatch[i]) {
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
		if f.count(i, d)+int64(c.selfMatch)-f.minMatch[i] > c.maxSkew {
			return statusSpread
		}
	}
	return nil
}

// spreadScorer is PodTopologySpread's score over the ScheduleAnyway
// constraints: fewer matching pods in the node's domains is better.
type spreadScorer struct {
	*spreadCounts
	weights []float64
}

func newSpreadScorer(c *Cache, p *podInfo) *spreadScorer {
	sc := newSpreadCounts(c, p, p.softSpread)
	if sc == nil {
		return nil
	}
	s := &spreadScorer{spreadCounts: sc, weights: make([]float64, len(sc.constraints))}
	for i := range sc.counts {
		s.weights[i] = math.Log(float64(sc.numDomains[i] + 2))
	}
	return s
}

// score returns the raw score (lower is better) and false for a node that
// lacks a constraint's key, which gets the minimum normalised score.
func (s *spreadScorer) score(n *nodeInfo) (int64, bool) {
	var total float64
	for i := range s.constraints {
		c := &s.constraints[i]
		d := s.domain(i, n)
		if d < 0 {
			return 0, false
		}
		total += float64(s.count(i, d))*s.weights[i] + float64(c.maxSkew-1)
	}
	return int64(math.Round(total)), true
}
