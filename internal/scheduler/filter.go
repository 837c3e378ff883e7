package scheduler

import (
	"fmt"
	"sort"

	v1 "k8s.io/api/core/v1"
)

// Reasons, word for word as upstream's plugins report them, because users
// and tools grep the FailedScheduling message for them.
const (
	reasonUnschedulable     = "node(s) were unschedulable"
	reasonNodeName          = "node(s) didn't match the requested node name"
	reasonNodeAffinity      = "node(s) didn't match Pod's node affinity/selector"
	reasonNodePorts         = "node(s) didn't have free ports for the requested pod ports"
	reasonTooManyPods       = "Too many pods"
	reasonAntiAffinity      = "node(s) didn't match pod anti-affinity rules"
	reasonExistingAnti      = "node(s) didn't satisfy existing pods anti-affinity rules"
	reasonAffinity          = "node(s) didn't match pod affinity rules"
	reasonSpread            = "node(s) didn't match pod topology spread constraints"
	reasonSpreadMissingNode = "node(s) didn't match pod topology spread constraints (missing required label)"
)

// status is why one node does not fit a pod. nil means it fits.
type status struct {
	reasons []string
	// unresolvable: removing pods from the node cannot help, so preemption
	// skips it (upstream's UnschedulableAndUnresolvable).
	unresolvable bool
}

var (
	statusUnschedulable = &status{reasons: []string{reasonUnschedulable}, unresolvable: true}
	statusNodeName      = &status{reasons: []string{reasonNodeName}, unresolvable: true}
	statusNodeAffinity  = &status{reasons: []string{reasonNodeAffinity}, unresolvable: true}
	statusNodePorts     = &status{reasons: []string{reasonNodePorts}}
	statusAntiAffinity  = &status{reasons: []string{reasonAntiAffinity}}
	statusExistingAnti  = &status{reasons: []string{reasonExistingAnti}}
	statusAffinity      = &status{reasons: []string{reasonAffinity}, unresolvable: true}
	statusSpread        = &status{reasons: []string{reasonSpread}}
	statusSpreadNoLabel = &status{reasons: []string{reasonSpreadMissingNode}, unresolvable: true}
	unschedulableTaint  = v1.Taint{Key: v1.TaintNodeUnschedulable, Effect: v1.TaintEffectNoSchedule}
)

// filterNode runs the node-local filters in upstream's default order and
// returns the first failure. The cross-node filters (topology spread,
// inter-pod affinity) run after it, from state built once per decision.
func filterNode(p *podInfo, n *nodeInfo) *status {
	if n.unschedulable && !tolerates(p.tolerations, &unschedulableTaint) {
		return statusUnschedulable
	}
	if p.pod.Spec.NodeName != "" && p.pod.Spec.NodeName != n.name {
		return statusNodeName
	}
	for i := range n.hardTaints {
		if t := &n.hardTaints[i]; !tolerates(p.tolerations, t) {
			return &status{reasons: []string{fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)}, unresolvable: true}
		}
	}
	if !p.matchesNodeSelector(n.name, n.labels) {
		return statusNodeAffinity
	}
	if len(p.ports) > 0 && portsConflict(p.ports, n.ports) {
		return statusNodePorts
	}
	return fitResources(p, n)
}

// tolerates reports whether any toleration matches the taint (Equal and
// Exists operators; the alpha Gt/Lt operators are not supported).
func tolerates(tols []v1.Toleration, t *v1.Taint) bool {
	for i := range tols {
		tol := &tols[i]
		if tol.Effect != "" && tol.Effect != t.Effect {
			continue
		}
		if tol.Key != "" && tol.Key != t.Key {
			continue
		}
		switch tol.Operator {
		case v1.TolerationOpExists:
			return true
		case "", v1.TolerationOpEqual:
			if tol.Value == t.Value {
				return true
			}
		}
	}
	return false
}

func portsConflict(want, used []hostPort) bool {
	for _, w := range want {
		for _, u := range used {
			if w.conflicts(u) {
				return true
			}
		}
	}
	return false
}

// fitResources is NodeResourcesFit: the pod's requests plus what is on the
// node (and what equal-or-higher-priority nominated pods reserve) against
// allocatable, and the pod count against allocatable pods.
func fitResources(p *podInfo, n *nodeInfo) *status {
	used := n.requested
	pods := int64(len(n.pods))
	var extra resources
	for _, q := range n.nominated {
		if q.key != p.key && q.priority >= p.priority {
			extra.add(&q.res, 1)
			pods++
		}
	}
	var reasons []string
	if pods+1 > n.allocPods {
		reasons = append(reasons, reasonTooManyPods)
	}
	r := &p.res
	if r.milliCPU == 0 && r.memory == 0 && r.ephemeral == 0 && len(r.scalar) == 0 {
		if reasons == nil {
			return nil
		}
		return &status{reasons: reasons}
	}
	if r.milliCPU > 0 && r.milliCPU+used.milliCPU+extra.milliCPU > n.alloc.milliCPU {
		reasons = append(reasons, "Insufficient cpu")
	}
	if r.memory > 0 && r.memory+used.memory+extra.memory > n.alloc.memory {
		reasons = append(reasons, "Insufficient memory")
	}
	if r.ephemeral > 0 && r.ephemeral+used.ephemeral+extra.ephemeral > n.alloc.ephemeral {
		reasons = append(reasons, "Insufficient ephemeral-storage")
	}
	if len(r.scalar) > 0 {
		var scalar []string
		for name, v := range r.scalar {
			if v > 0 && v+used.scalar[name]+extra.scalar[name] > n.alloc.scalar[name] {
				scalar = append(scalar, "Insufficient "+string(name))
			}
		}
		sort.Strings(scalar)
		reasons = append(reasons, scalar...)
	}
	if reasons == nil {
		return nil
	}
	return &status{reasons: reasons}
}
