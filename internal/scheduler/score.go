package scheduler

import v1 "k8s.io/api/core/v1"

// maxNodeScore is the top of every plugin's normalised score.
const maxNodeScore = 100

// Weights of the default profile's score plugins, as upstream's.
// ImageLocality (weight 1 upstream) is not implemented.
const (
	weightTaintToleration = 3
	weightNodeAffinity    = 2
	weightSpread          = 2
	weightInterPod        = 2
	weightLeastAllocated  = 1
	weightBalanced        = 1
)

// leastAllocated is NodeResourcesFit's default LeastAllocated score: the
// free share of CPU and memory (weights 1 and 1) after placing the pod,
// counting requests with the non-zero defaults.
func leastAllocated(p *podInfo, n *nodeInfo) int64 {
	cpu := freeShare(n.nonZeroCPU+p.nonZeroCPU, n.alloc.milliCPU)
	mem := freeShare(n.nonZeroMem+p.nonZeroMem, n.alloc.memory)
	return (cpu + mem) / 2
}

func freeShare(requested, capacity int64) int64 {
	if capacity == 0 || requested > capacity {
		return 0
	}
	return (capacity - requested) * maxNodeScore / capacity
}

// balancedAllocation is NodeResourcesBalancedAllocation: nodes whose CPU
// and memory would be used in equal shares score higher (100 minus the
// standard deviation of the two shares, in percent).
func balancedAllocation(p *podInfo, n *nodeInfo) int64 {
	cpu := usedFraction(n.requested.milliCPU+p.res.milliCPU, n.alloc.milliCPU)
	mem := usedFraction(n.requested.memory+p.res.memory, n.alloc.memory)
	d := cpu - mem
	if d < 0 {
		d = -d
	}
	return int64((1 - d/2) * maxNodeScore)
}

func usedFraction(requested, capacity int64) float64 {
	if capacity == 0 {
		return 0
	}
	f := float64(requested) / float64(capacity)
	return min(f, 1)
}

// intolerableSoftTaints is TaintToleration's raw score: how many
// PreferNoSchedule taints the pod does not tolerate (fewer is better).
func intolerableSoftTaints(p *podInfo, n *nodeInfo) int64 {
	var c int64
	for i := range n.softTaints {
		if !toleratesSoft(p.tolerations, &n.softTaints[i]) {
			c++
		}
	}
	return c
}

// toleratesSoft only counts tolerations that apply to PreferNoSchedule
// (that effect or any effect), as upstream's score does.
func toleratesSoft(tols []v1.Toleration, t *v1.Taint) bool {
	for i := range tols {
		if tols[i].Effect == "" || tols[i].Effect == t.Effect {
			if tolerates(tols[i:i+1], t) {
				return true
			}
		}
	}
	return false
}

// preferredNodeAffinity is NodeAffinity's raw score: the summed weights of
// the preferred terms the node matches.
func preferredNodeAffinity(p *podInfo, n *nodeInfo) int64 {
	var s int64
	for i := range p.preferred {
		if p.preferred[i].term.matches(n.name, n.labels) {
			s += p.preferred[i].weight
		}
	}
	return s
}

// normalizeMax scales raw scores to 0..100 by the maximum (higher raw is
// better); all zero stays zero. With reverse, lower raw is better.
func normalizeMax(scores []int64, reverse bool) {
	var hi int64
	for _, s := range scores {
		hi = max(hi, s)
	}
	for i, s := range scores {
		switch {
		case hi == 0 && reverse:
			scores[i] = maxNodeScore
		case hi == 0:
			scores[i] = 0
		case reverse:
			scores[i] = maxNodeScore - s*maxNodeScore/hi
		default:
			scores[i] = s * maxNodeScore / hi
		}
	}
}

// normalizeMinMax scales raw scores linearly so the minimum is 0 and the
// maximum 100 (InterPodAffinity); all equal gives 0.
func normalizeMinMax(scores []int64) {
	if len(scores) == 0 {
		return
	}
	lo, hi := scores[0], scores[0]
	for _, s := range scores {
		lo, hi = min(lo, s), max(hi, s)
	}
	for i, s := range scores {
		if hi == lo {
			scores[i] = 0
		} else {
			scores[i] = (s - lo) * maxNodeScore / (hi - lo)
		}
	}
}

// normalizeSpread is PodTopologySpread's normalisation: lower raw is
// better; nodes that lack a constraint's key (ok false) get 0.
func normalizeSpread(scores []int64, ok []bool) {
	var lo, hi int64
	first := true
	for i, s := range scores {
		if !ok[i] {
			continue
		}
		if first {
			lo, hi, first = s, s, false
		}
		lo, hi = min(lo, s), max(hi, s)
	}
	for i, s := range scores {
		switch {
		case !ok[i]:
			scores[i] = 0
		case hi == 0:
			scores[i] = maxNodeScore
		default:
			scores[i] = maxNodeScore * (hi + lo - s) / hi
		}
	}
}
