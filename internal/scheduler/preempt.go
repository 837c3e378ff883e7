package scheduler

import (
	"math"
	"sort"

	v1 "k8s.io/api/core/v1"
)

// Preemption messages, as upstream's DefaultPreemption words them.
const (
	msgPreemptNever       = "preemption: not eligible due to preemptionPolicy=Never."
	msgPreemptTerminating = "preemption: not eligible due to a terminating pod on the nominated node."
	msgNoVictims          = "No preemption victims found for incoming pod"
	msgNotHelpful         = "Preemption is not helpful for scheduling"
)

// preemption is the outcome of a successful preemption decision: the pod
// is nominated to node once victims are deleted.
type preemption struct {
	node    *nodeInfo
	victims []*podInfo
}

// preempt looks for a node where deleting pods of lower priority than p
// makes p fit, after the decision fe failed. It returns the chosen node and
// victims, or nil and the message preemption adds to fe. The caller holds
// a.cache.mu.
//
// Victims are chosen per node as upstream does: remove every lower-priority
// pod, check the pod fits, then give back ("reprieve") the most important
// pods first while it still fits. Among candidate nodes it prefers the
// lowest highest-victim priority, then the lowest sum of priorities, then
// the fewest victims. PodDisruptionBudgets are not considered, and the
// inter-pod affinity and spread state is not recomputed without the
// victims (a node blocked only by a victim's anti-affinity is not found).
func (a *algorithm) preempt(p *podInfo, fe *fitError) (*preemption, string) {
	if pp := p.pod.Spec.PreemptionPolicy; pp != nil && *pp == v1.PreemptNever {
		return nil, msgPreemptNever
	}
	if name := p.pod.Status.NominatedNodeName; name != "" {
		if n := a.cache.nodes[name]; n != nil {
			for _, q := range n.pods {
				if q.pod.DeletionTimestamp != nil && q.priority < p.priority {
					return nil, msgPreemptTerminating
				}
			}
		}
	}
	d := a.newDecision(p)
	results := map[string]*status{}
	var best *preemption
	var bestKey [3]int64
	for _, n := range a.cache.list {
		if st := fe.statuses[n.name]; st == nil || st.unresolvable {
			results[n.name] = &status{reasons: []string{msgNotHelpful}}
			continue
		}
		victims := selectVictims(d, n)
		if victims == nil {
			results[n.name] = &status{reasons: []string{msgNoVictims}}
			continue
		}
		key := victimsKey(victims)
		if best == nil || less(key, bestKey) {
			best, bestKey = &preemption{node: n, victims: victims}, key
		}
	}
	if best != nil {
		return best, ""
	}
	return nil, "preemption: " + nodesAvailable(len(a.cache.list), histogram(results))
}

// selectVictims returns the fewest pods on n to delete so that the pod of
// d fits, or nil if deleting every lower-priority pod is not enough.
func selectVictims(d *decision, n *nodeInfo) []*podInfo {
	var candidates []*podInfo
	trial := n.clone()
	for _, q := range n.pods {
		if q.priority < d.pod.priority {
			candidates = append(candidates, q)
			trial.removePod(q.key)
		}
	}
	if len(candidates) == 0 || d.filter(trial) != nil {
		return nil
	}
	// Most important first: higher priority, then the older pod.
	sort.SliceStable(candidates, func(i, j int) bool {
		if candidates[i].priority != candidates[j].priority {
			return candidates[i].priority > candidates[j].priority
		}
		return candidates[i].created.Before(candidates[j].created)
	})
	var victims []*podInfo
	for _, q := range candidates {
		trial.addPod(q)
		if d.filter(trial) != nil {
			trial.removePod(q.key)
			victims = append(victims, q)
		}
	}
	if len(victims) == 0 {
		return nil // fits without deleting anything: not a preemption case
	}
	return victims
}

// victimsKey orders candidate nodes: highest victim priority, sum of
// victim priorities (offset so every term is positive), victim count.
func victimsKey(victims []*podInfo) [3]int64 {
	var highest int64 = math.MinInt64
	var sum int64
	for _, v := range victims {
		highest = max(highest, int64(v.priority))
		sum += int64(v.priority) + math.MaxInt32 + 1
	}
	return [3]int64{highest, sum, int64(len(victims))}
}

func less(a, b [3]int64) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
