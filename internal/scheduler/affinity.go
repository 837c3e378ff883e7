package scheduler

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// hardPodAffinityWeight is what an existing pod's required affinity term
// matching the incoming pod adds to a node's score (upstream's default).
const hardPodAffinityWeight = 1

// podAffinity is a pod's compiled inter-pod affinity and anti-affinity.
type podAffinity struct {
	required      []affinityTerm
	requiredAnti  []affinityTerm
	preferred     []affinityTerm
	preferredAnti []affinityTerm
}

// affinityTerm is a compiled PodAffinityTerm: which pods (label selector,
// namespaces) and over which topology (node label key).
type affinityTerm struct {
	selector    labels.Selector
	namespaces  map[string]struct{}
	nsSelector  labels.Selector // nil: none
	topologyKey string
	weight      int64
}

func compilePodAffinity(pod *v1.Pod, a *v1.Affinity) *podAffinity {
	var out podAffinity
	if pa := a.PodAffinity; pa != nil {
		for i := range pa.RequiredDuringSchedulingIgnoredDuringExecution {
			out.required = append(out.required, compileAffinityTerm(pod, &pa.RequiredDuringSchedulingIgnoredDuringExecution[i], 1))
		}
		for _, w := range pa.PreferredDuringSchedulingIgnoredDuringExecution {
			out.preferred = append(out.preferred, compileAffinityTerm(pod, &w.PodAffinityTerm, int64(w.Weight)))
		}
	}
	if pa := a.PodAntiAffinity; pa != nil {
		for i := range pa.RequiredDuringSchedulingIgnoredDuringExecution {
			out.requiredAnti = append(out.requiredAnti, compileAffinityTerm(pod, &pa.RequiredDuringSchedulingIgnoredDuringExecution[i], 1))
		}
		for _, w := range pa.PreferredDuringSchedulingIgnoredDuringExecution {
			out.preferredAnti = append(out.preferredAnti, compileAffinityTerm(pod, &w.PodAffinityTerm, int64(w.Weight)))
		}
	}
	if len(out.required)+len(out.requiredAnti)+len(out.preferred)+len(out.preferredAnti) == 0 {
		return nil
	}
	return &out
}

func compileAffinityTerm(pod *v1.Pod, t *v1.PodAffinityTerm, weight int64) affinityTerm {
	out := affinityTerm{topologyKey: t.TopologyKey, weight: weight}
	sel, err := metav1.LabelSelectorAsSelector(t.LabelSelector)
	if err != nil {
		sel = labels.Nothing()
	}
	// matchLabelKeys / mismatchLabelKeys add the incoming pod's own values.
	for _, k := range t.MatchLabelKeys {
		if v, ok := pod.Labels[k]; ok {
			sel = addRequirement(sel, k, selection.In, v)
		}
	}
	for _, k := range t.MismatchLabelKeys {
		if v, ok := pod.Labels[k]; ok {
			sel = addRequirement(sel, k, selection.NotIn, v)
		}
	}
	out.selector = sel
	if t.NamespaceSelector != nil {
		ns, err := metav1.LabelSelectorAsSelector(t.NamespaceSelector)
		if err == nil {
			out.nsSelector = ns
		}
	}
	if len(t.Namespaces) > 0 || out.nsSelector == nil {
		out.namespaces = map[string]struct{}{}
		for _, ns := range t.Namespaces {
			out.namespaces[ns] = struct{}{}
		}
		if len(t.Namespaces) == 0 {
			out.namespaces[pod.Namespace] = struct{}{}
		}
	}
	return out
}

// addRequirement adds "key op (value)" to sel; an invalid one makes the
// selector match nothing, as an invalid selector does upstream.
func addRequirement(sel labels.Selector, key string, op selection.Operator, value string) labels.Selector {
	r, err := labels.NewRequirement(key, op, []string{value})
	if err != nil {
		return labels.Nothing()
	}
	return sel.Add(*r)
}

func (t *affinityTerm) matches(p *podInfo, nsLabels func(string) labels.Set) bool {
	if _, ok := t.namespaces[p.namespace]; !ok {
		if t.nsSelector == nil {
			return false
		}
		var l labels.Set
		if nsLabels != nil {
			l = nsLabels(p.namespace)
		}
		if !t.nsSelector.Matches(l) {
			return false
		}
	}
	return t.selector.Matches(p.labels)
}

type topoPair struct{ key, value string }

// affinityState is the InterPodAffinity plugin's per-decision state: the
// topology domains that existing pods make forbidden or required for the
// incoming pod, built once from all pods instead of once per node.
type affinityState struct {
	existingAnti map[topoPair]int // domains where an existing pod's required anti-affinity matches the pod
	affinity     map[topoPair]int // domains holding pods that match all the pod's required affinity terms
	anti         map[topoPair]int // domains holding pods that match one of the pod's required anti-affinity terms
	// selfMatch: no pod anywhere matches the required affinity terms but
	// the pod matches them itself, so it may go anywhere (the first pod of
	// a group that wants to be together).
	selfMatch bool
	pod       *podInfo
	nsLabels  func(string) labels.Set
}

// newAffinityState returns nil when neither the pod nor any cached pod
// has required inter-pod terms that could apply.
// The caller holds c.mu.
func newAffinityState(p *podInfo, c *Cache) *affinityState {
	hasOwn := p.affinity != nil && (len(p.affinity.required) > 0 || len(p.affinity.requiredAnti) > 0)
	if !hasOwn && len(c.affinityPods) == 0 {
		return nil
	}
	nsLabels := c.nsLabels
	s := &affinityState{existingAnti: map[topoPair]int{}, affinity: map[topoPair]int{}, anti: map[topoPair]int{}, pod: p, nsLabels: nsLabels}
	forEachPod(c, !hasOwn, func(n *nodeInfo, q *podInfo) {
		if q.affinity != nil {
			for i := range q.affinity.requiredAnti {
				t := &q.affinity.requiredAnti[i]
				if v, ok := n.labels[t.topologyKey]; ok && t.matches(p, nsLabels) {
					s.existingAnti[topoPair{t.topologyKey, v}]++
				}
			}
		}
		if !hasOwn {
			return
		}
		if len(p.affinity.required) > 0 {
			all := true
			for i := range p.affinity.required {
				if !p.affinity.required[i].matches(q, nsLabels) {
					all = false
					break
				}
			}
			if all {
				for i := range p.affinity.required {
					t := &p.affinity.required[i]
					if v, ok := n.labels[t.topologyKey]; ok {
						s.affinity[topoPair{t.topologyKey, v}]++
					}
				}
			}
		}
		for i := range p.affinity.requiredAnti {
			t := &p.affinity.requiredAnti[i]
			if v, ok := n.labels[t.topologyKey]; ok && t.matches(q, nsLabels) {
				s.anti[topoPair{t.topologyKey, v}]++
			}
		}
	})
	if hasOwn && len(p.affinity.required) > 0 && len(s.affinity) == 0 {
		s.selfMatch = true
		for i := range p.affinity.required {
			if !p.affinity.required[i].matches(p, nsLabels) {
				s.selfMatch = false
				break
			}
		}
	}
	return s
}

// filter is the InterPodAffinity filter for one node.
func (s *affinityState) filter(n *nodeInfo) *status {
	for tp, c := range s.existingAnti {
		if c > 0 && n.labels[tp.key] == tp.value {
			if _, ok := n.labels[tp.key]; ok {
				return statusExistingAnti
			}
		}
	}
	p := s.pod
	if p.affinity == nil {
		return nil
	}
	for i := range p.affinity.required {
		t := &p.affinity.required[i]
		v, ok := n.labels[t.topologyKey]
		if !ok {
			return statusAffinity
		}
		if !s.selfMatch && s.affinity[topoPair{t.topologyKey, v}] == 0 {
			return statusAffinity
		}
	}
	for i := range p.affinity.requiredAnti {
		t := &p.affinity.requiredAnti[i]
		if v, ok := n.labels[t.topologyKey]; ok && s.anti[topoPair{t.topologyKey, v}] > 0 {
			return statusAntiAffinity
		}
	}
	return nil
}

// affinityScores is the InterPodAffinity score's per-decision state: a
// weight per topology domain, summed over a node's domains.
type affinityScores map[topoPair]int64

// newAffinityScores returns nil when there is nothing to score.
// The caller holds c.mu.
func newAffinityScores(p *podInfo, c *Cache) affinityScores {
	hasPreferred := p.affinity != nil && (len(p.affinity.preferred) > 0 || len(p.affinity.preferredAnti) > 0)
	if !hasPreferred && len(c.affinityPods) == 0 {
		return nil
	}
	nsLabels := c.nsLabels
	s := affinityScores{}
	add := func(n *nodeInfo, terms []affinityTerm, target *podInfo, sign int64) {
		for i := range terms {
			t := &terms[i]
			if v, ok := n.labels[t.topologyKey]; ok && t.matches(target, nsLabels) {
				s[topoPair{t.topologyKey, v}] += sign * t.weight
			}
		}
	}
	forEachPod(c, !hasPreferred, func(n *nodeInfo, q *podInfo) {
		if hasPreferred {
			add(n, p.affinity.preferred, q, 1)
			add(n, p.affinity.preferredAnti, q, -1)
		}
		if q.affinity != nil {
			for i := range q.affinity.required {
				t := &q.affinity.required[i]
				if v, ok := n.labels[t.topologyKey]; ok && t.matches(p, nsLabels) {
					s[topoPair{t.topologyKey, v}] += hardPodAffinityWeight
				}
			}
			add(n, q.affinity.preferred, p, 1)
			add(n, q.affinity.preferredAnti, p, -1)
		}
	})
	if len(s) == 0 {
		return nil
	}
	return s
}

func (s affinityScores) score(n *nodeInfo) int64 {
	var total int64
	for tp, w := range s {
		if v, ok := n.labels[tp.key]; ok && v == tp.value {
			total += w
		}
	}
	return total
}

// forEachPod calls fn for each cached pod on a listed node, or with
// onlyAffinity only for the pods that have inter-pod terms.
func forEachPod(c *Cache, onlyAffinity bool, fn func(*nodeInfo, *podInfo)) {
	if onlyAffinity {
		for _, cp := range c.affinityPods {
			if n := c.nodes[cp.node]; n != nil && n.node != nil {
				fn(n, cp.info)
			}
		}
		return
	}
	for _, n := range c.list {
		for _, q := range n.pods {
			fn(n, q)
		}
	}
}
