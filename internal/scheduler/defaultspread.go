package scheduler

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// System default topology spread (upstream's PodTopologySpread
// defaultingType System): a pod without topologySpreadConstraints of its
// own is scored as if it had these two ScheduleAnyway constraints, over
// the pods its Services and controller select. They never filter.
var systemDefaultSpread = []struct {
	key     string
	maxSkew int64
}{
	{v1.LabelHostname, 3},
	{v1.LabelTopologyZone, 5},
}

var (
	replicaSetKind            = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
	statefulSetKind           = appsv1.SchemeGroupVersion.WithKind("StatefulSet")
	replicationControllerKind = v1.SchemeGroupVersion.WithKind("ReplicationController")
)

// spreadSelectors finds the objects whose selectors make up a pod's
// default spread selector. A nil lister is treated as empty.
type spreadSelectors struct {
	services               corelisters.ServiceLister
	replicaSets            appslisters.ReplicaSetLister
	statefulSets           appslisters.StatefulSetLister
	replicationControllers corelisters.ReplicationControllerLister
}

// defaultSelector returns upstream's default selector for pod: the
// matchLabels of every Service in the pod's namespace whose selector
// matches the pod, ANDed with the selector of the ReplicaSet, StatefulSet
// or ReplicationController that is the pod's controller (looked up by the
// controller reference, as upstream does, not by matching). It is empty
// when nothing selects the pod.
func (s *spreadSelectors) defaultSelector(pod *v1.Pod) labels.Selector {
	if s == nil || pod == nil {
		return labels.Everything()
	}
	set := labels.Set{}
	if s.services != nil {
		if svcs, err := s.services.Services(pod.Namespace).List(labels.Everything()); err == nil {
			for _, svc := range svcs {
				// A nil selector selects nothing; an empty one adds nothing.
				if svc != nil && len(svc.Spec.Selector) > 0 && subsetOf(svc.Spec.Selector, pod.Labels) {
					for k, v := range svc.Spec.Selector {
						set[k] = v
					}
				}
			}
		}
	}
	sel := labels.SelectorFromSet(set)
	owner := metav1.GetControllerOfNoCopy(pod)
	if owner == nil {
		return sel
	}
	gv, err := schema.ParseGroupVersion(owner.APIVersion)
	if err != nil {
		return sel
	}
	var ls *metav1.LabelSelector
	switch gv.WithKind(owner.Kind) {
	case replicaSetKind:
		if s.replicaSets != nil {
			if rs, err := s.replicaSets.ReplicaSets(pod.Namespace).Get(owner.Name); err == nil && rs != nil {
				ls = rs.Spec.Selector
			}
		}
	case replicationControllerKind:
		if s.replicationControllers != nil {
			if rc, err := s.replicationControllers.ReplicationControllers(pod.Namespace).Get(owner.Name); err == nil && rc != nil && len(rc.Spec.Selector) > 0 {
				ls = &metav1.LabelSelector{MatchLabels: rc.Spec.Selector}
			}
		}
	case statefulSetKind:
		if s.statefulSets != nil {
			if ss, err := s.statefulSets.StatefulSets(pod.Namespace).Get(owner.Name); err == nil && ss != nil {
				ls = ss.Spec.Selector
			}
		}
	}
	if ls == nil {
		return sel
	}
	other, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return sel
	}
	reqs, ok := other.Requirements()
	if !ok {
		return sel
	}
	// Skip what a Service already requires (upstream keeps the duplicate;
	// the selector matches the same pods either way), so the selector and
	// the cache's count index keyed by it stay canonical.
	have, _ := sel.Requirements()
	for _, r := range reqs {
		if !slices.ContainsFunc(have, func(h labels.Requirement) bool { return h.Equal(r) }) {
			sel = sel.Add(r)
		}
	}
	return sel
}

// subsetOf reports whether every key=value of sel is in l.
func subsetOf(sel, l map[string]string) bool {
	for k, v := range sel {
		if lv, ok := l[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

// setDefaultSpread gives a pod without topology spread constraints of its
// own the system default constraints over sel; an empty or nil sel (no
// Service or controller selects the pod) gives it none. A pod with
// constraints of its own is left alone. It may be called again (each
// scheduling attempt) with a fresh selector.
func (p *podInfo) setDefaultSpread(sel labels.Selector) {
	if len(p.pod.Spec.TopologySpreadConstraints) > 0 {
		return
	}
	p.softSpread, p.spreadDefaulted = nil, false
	if sel == nil || sel.Empty() {
		return
	}
	self := 0
	if sel.Matches(p.labels) {
		self = 1
	}
	p.softSpread = make([]spreadConstraint, 0, len(systemDefaultSpread))
	for _, d := range systemDefaultSpread {
		p.softSpread = append(p.softSpread, spreadConstraint{
			maxSkew:       d.maxSkew,
			key:           d.key,
			selector:      sel,
			minDomains:    1,
			honorAffinity: true,
			selfMatch:     self,
		})
	}
	p.spreadDefaulted = true
}
