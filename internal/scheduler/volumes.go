package scheduler

import (
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Volume filters: upstream's VolumeRestrictions (its ReadWriteOncePod
// part) and VolumeBinding, for persistentVolumeClaim and generic ephemeral
// volumes. Their PreFilter work — reading the claims, classes and volumes
// — is done once per attempt from the informers, before the decision takes
// the cache lock (volumeBinder.podState); what is left per node is label
// matching over the state it returns.

// Reasons and messages, word for word as upstream's plugins give them.
const (
	reasonVolumeNodeConflict = "node(s) had volume node affinity conflict"
	reasonVolumeBindConflict = "node(s) didn't find available persistent volumes to bind"
	reasonPVNotExist         = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
	reasonRWOPConflict       = "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode"
	msgUnboundImmediate      = "pod has unbound immediate PersistentVolumeClaims"
)

var (
	statusVolumeNodeConflict = &status{reasons: []string{reasonVolumeNodeConflict}, unresolvable: true}
	statusVolumeBindConflict = &status{reasons: []string{reasonVolumeBindConflict}, unresolvable: true}
	statusPVNotExist         = &status{reasons: []string{reasonPVNotExist}, unresolvable: true}
	// statusRWOPConflict is resolvable: preempting the pod that uses the
	// claim frees it.
	statusRWOPConflict = &status{reasons: []string{reasonRWOPConflict}}
)

// volumeState is the volume filters' view of one pod for one attempt.
type volumeState struct {
	// unschedulable, if set, is why no node fits (a PreFilter verdict:
	// a missing or deleted claim, an unbound Immediate claim).
	unschedulable string
	// rwop are the keys (namespace/name) of the pod's claims with the
	// ReadWriteOncePod access mode; rwopUsers the cached pods using them,
	// which each decision looks up under the cache lock.
	rwop      []string
	rwopUsers []*cachedPod
	// bound are the pod's bound claims' volumes.
	bound []boundVolume
	// unbound are the pod's unbound WaitForFirstConsumer claims, smallest
	// request first (the order upstream matches them to volumes in).
	unbound []*unboundClaim
}

// boundVolume is the volume of a bound claim.
type boundVolume struct {
	pv       *v1.PersistentVolume // nil: the volume does not exist
	affinity *pvAffinity
}

// unboundClaim is a WaitForFirstConsumer claim waiting for its pod's node,
// with what can satisfy it.
type unboundClaim struct {
	claim *v1.PersistentVolumeClaim
	// selectedNode is the claim's volume.kubernetes.io/selected-node: its
	// provisioning was already triggered for that node, the only one that
	// fits.
	selectedNode    string
	hasSelectedNode bool
	// prebound is a volume whose claimRef already names the claim: it is
	// taken if its node affinity allows the node, and otherwise no volume
	// is, as upstream's FindMatchingVolume.
	prebound *candidateVolume
	// candidates are the Available volumes of the claim's class that match
	// it on everything but the node, smallest first.
	candidates []candidateVolume
	// provisioner is set when the class provisions volumes dynamically;
	// topology is its allowedTopologies (nil: every node).
	provisioner bool
	topology    []labels.Selector
}

type candidateVolume struct {
	pv       *v1.PersistentVolume
	affinity *pvAffinity
}

// pvAffinity is a volume's compiled spec.nodeAffinity.required; nil
// allows every node.
type pvAffinity struct{ terms []nodeTerm }

// matches reports whether a node with labels l satisfies the affinity. As
// upstream's CheckNodeAffinity, only labels are matched: a matchFields
// term on metadata.name sees an empty name.
func (a *pvAffinity) matches(l labels.Set) bool {
	if a == nil {
		return true
	}
	for i := range a.terms {
		if a.terms[i].matches("", l) {
			return true
		}
	}
	return false
}

func compilePVAffinity(pv *v1.PersistentVolume) *pvAffinity {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return nil
	}
	terms := pv.Spec.NodeAffinity.Required.NodeSelectorTerms
	a := &pvAffinity{terms: make([]nodeTerm, 0, len(terms))}
	for i := range terms {
		a.terms = append(a.terms, compileNodeTerm(&terms[i]))
	}
	return a
}

// canProvision reports whether the claim's class can provision a volume
// reachable from a node with labels l.
func (c *unboundClaim) canProvision(l labels.Set) bool {
	if !c.provisioner {
		return false
	}
	if c.topology == nil {
		return true
	}
	for _, sel := range c.topology {
		if sel.Matches(l) {
			return true
		}
	}
	return false
}

// find returns the volume the claim binds to on a node with labels l,
// skipping volumes taken by the pod's other claims; nil if none.
func (c *unboundClaim) find(l labels.Set, taken []*v1.PersistentVolume) *v1.PersistentVolume {
	if c.prebound != nil {
		if c.prebound.affinity.matches(l) {
			return c.prebound.pv
		}
		return nil
	}
	for i := range c.candidates {
		cv := &c.candidates[i]
		if cv.affinity.matches(l) && !slices.Contains(taken, cv.pv) {
			return cv.pv
		}
	}
	return nil
}

// volumePlan is what PreBind does for a pod on its node: bind static
// volumes to claims, and ask for the provisioning of the rest.
type volumePlan struct {
	static    []staticBinding
	provision []*provisioning
}

type staticBinding struct {
	pv    *v1.PersistentVolume
	claim *v1.PersistentVolumeClaim
	// written: pv (with the claimRef) differs from the stored volume and
	// PreBind writes it.
	written bool
}

type provisioning struct {
	claim   *v1.PersistentVolumeClaim
	written bool
}

// filter is VolumeRestrictions' (ReadWriteOncePod) then VolumeBinding's
// Filter for node n.
func (st *volumeState) filter(n *nodeInfo) *status {
	if len(st.rwopUsers) > 0 {
		if s := rwopConflict(st.rwopUsers, n); s != nil {
			return s
		}
	}
	if len(st.bound) == 0 && len(st.unbound) == 0 {
		return nil
	}
	return st.match(n, nil)
}

// match checks the pod's claims against node n and, if plan is not nil
// and n fits, fills plan with the bindings n needs. Reasons come in
// upstream's order.
func (st *volumeState) match(n *nodeInfo, plan *volumePlan) *status {
	nodeConflict, pvMissing := false, false
	for i := range st.bound {
		b := &st.bound[i]
		if b.pv == nil {
			pvMissing = true
			break
		}
		if !b.affinity.matches(n.labels) {
			nodeConflict = true
			break
		}
	}
	bindConflict := len(st.unbound) > 0 && !st.matchUnbound(n, plan)
	switch {
	case !nodeConflict && !bindConflict && !pvMissing:
		return nil
	case nodeConflict && !bindConflict:
		return statusVolumeNodeConflict
	case bindConflict && !nodeConflict && !pvMissing:
		return statusVolumeBindConflict
	case pvMissing && !bindConflict:
		return statusPVNotExist
	}
	var reasons []string
	if nodeConflict {
		reasons = append(reasons, reasonVolumeNodeConflict)
	}
	reasons = append(reasons, reasonVolumeBindConflict)
	if pvMissing {
		reasons = append(reasons, reasonPVNotExist)
	}
	return &status{reasons: reasons, unresolvable: true}
}

// matchUnbound reports whether every unbound claim gets a volume on n: a
// matching static volume (each taken once), or else provisioning.
func (st *volumeState) matchUnbound(n *nodeInfo, plan *volumePlan) bool {
	for _, c := range st.unbound {
		if c.hasSelectedNode && c.selectedNode != n.name {
			return false
		}
	}
	var buf [4]*v1.PersistentVolume
	taken := buf[:0]
	for _, c := range st.unbound {
		if !c.hasSelectedNode {
			if pv := c.find(n.labels, taken); pv != nil {
				taken = append(taken, pv)
				if plan != nil {
					plan.static = append(plan.static, staticBinding{pv: pv, claim: c.claim})
				}
				continue
			}
		}
		if !c.canProvision(n.labels) {
			return false
		}
		if plan != nil {
			plan.provision = append(plan.provision, &provisioning{claim: c.claim})
		}
	}
	return true
}

// plan returns the bindings the pod needs on n, which fits it.
func (st *volumeState) plan(n *nodeInfo) *volumePlan {
	plan := &volumePlan{}
	st.match(n, plan)
	return plan
}

// rwopUsersLocked returns the cached pods other than the pod with key
// self that use one of the claims. The caller holds c.mu.
func (c *Cache) rwopUsersLocked(self string, claims []string) []*cachedPod {
	var out []*cachedPod
	for _, key := range claims {
		for _, cp := range c.claimUsers[key] {
			if cp.info.key != self {
				out = append(out, cp)
			}
		}
	}
	return out
}

// rwopConflict is VolumeRestrictions' ReadWriteOncePod check on node n:
// any pod using the claim conflicts, wherever it runs, unless it is on n
// and n is a preemption trial without it.
func rwopConflict(users []*cachedPod, n *nodeInfo) *status {
	for _, cp := range users {
		if cp.node != n.name || slices.Contains(n.pods, cp.info) {
			return statusRWOPConflict
		}
	}
	return nil
}
