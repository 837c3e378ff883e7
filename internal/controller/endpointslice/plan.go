package endpointslice

import (
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ManagedBy is the value of the endpointslice.kubernetes.io/managed-by
// label on the slices this controller owns; slices with another value
// (the API server's own "kubernetes" slice, user slices) are never touched.
const ManagedBy = "endpointslice-controller.k8s.io"

// MaxEndpointsPerSlice is upstream's default --max-endpoints-per-slice.
const MaxEndpointsPerSlice = 100

// annotationTriggerTime is upstream's endpoints.kubernetes.io/last-change-trigger-time.
const annotationTriggerTime = corev1.EndpointsLastChangeTriggerTime

var serviceGVK = corev1.SchemeGroupVersion.WithKind("Service")

// plan is the writes that bring a service's slices to the desired state.
type plan struct {
	create []*discoveryv1.EndpointSlice
	update []*discoveryv1.EndpointSlice
	delete []*discoveryv1.EndpointSlice
}

func (p plan) empty() bool { return len(p.create)+len(p.update)+len(p.delete) == 0 }

// planSlices compares existing (the slices labelled with the service's name
// and managed by this controller) with groups (from desired) and returns
// the creates, updates and deletes that reconcile them with as few writes
// as possible:
//
//   - a slice whose endpoints, ports, labels and owner are already right is
//     not written;
//   - an endpoint that is still wanted stays in the slice it is in (updated
//     in place when its conditions or address changed);
//   - new endpoints go first into slices that are being written anyway,
//     then into other slices with room, and only then into new slices of
//     at most maxPerSlice endpoints;
//   - slices left empty, slices whose port mapping is no longer wanted and
//     slices owned by an older service of the same name are deleted;
//   - a service without endpoints keeps exactly one empty slice (upstream's
//     placeholder), so that consumers can tell "no endpoints" from "not
//     processed yet".
//
// triggerTime, when not empty, is written as the last-change-trigger-time
// annotation on every slice created or updated. Inputs are not modified.
func planSlices(svc *corev1.Service, existing []*discoveryv1.EndpointSlice, groups map[string]*group, maxPerSlice int, triggerTime string) plan {
	var p plan
	if svc == nil {
		return p
	}
	if maxPerSlice <= 0 {
		maxPerSlice = MaxEndpointsPerSlice
	}
	labels := sliceLabels(svc)
	buckets := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range sortedByName(existing) {
		ref := metav1.GetControllerOf(s)
		if s.AddressType != discoveryv1.AddressTypeIPv4 || ref == nil || ref.UID != svc.UID {
			p.delete = append(p.delete, s)
			continue
		}
		k := portsKey(s.Ports)
		buckets[k] = append(buckets[k], s)
	}

	total := 0
	for _, g := range groups {
		total += len(g.endpoints)
	}
	if total == 0 {
		return placeholder(svc, p, buckets, labels, triggerTime)
	}

	for _, k := range slices.Sorted(maps.Keys(buckets)) {
		if _, ok := groups[k]; !ok {
			p.delete = append(p.delete, buckets[k]...)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(groups)) {
		planGroup(&p, svc, buckets[k], groups[k], labels, maxPerSlice, triggerTime)
	}
	return p
}

// planGroup plans the slices of one port mapping.
func planGroup(p *plan, svc *corev1.Service, existing []*discoveryv1.EndpointSlice, g *group, labels map[string]string, maxPerSlice int, triggerTime string) {
	wanted := make(map[string]discoveryv1.Endpoint, len(g.endpoints))
	for _, ep := range g.endpoints {
		wanted[endpointKey(ep)] = ep
	}
	placed := map[string]bool{}
	var changed, unchanged []*discoveryv1.EndpointSlice
	for _, s := range existing {
		next := s.DeepCopy()
		next.Endpoints = nil
		dirty := false
		for _, ep := range s.Endpoints {
			k := endpointKey(ep)
			w, ok := wanted[k]
			if !ok || placed[k] || len(next.Endpoints) >= maxPerSlice {
				dirty = true
				continue
			}
			placed[k] = true
			if !apiequality.Semantic.DeepEqual(ep, w) {
				dirty = true
			}
			next.Endpoints = append(next.Endpoints, *w.DeepCopy())
		}
		if !maps.Equal(s.Labels, labels) || !apiequality.Semantic.DeepEqual(s.Ports, g.ports) {
			dirty = true
		}
		if dirty {
			changed = append(changed, next)
		} else {
			unchanged = append(unchanged, next)
		}
	}
	var remaining []discoveryv1.Endpoint
	for _, ep := range g.endpoints {
		if !placed[endpointKey(ep)] {
			remaining = append(remaining, ep)
		}
	}
	fill := func(s *discoveryv1.EndpointSlice) {
		n := min(maxPerSlice-len(s.Endpoints), len(remaining))
		if n <= 0 {
			return
		}
		for _, ep := range remaining[:n] {
			s.Endpoints = append(s.Endpoints, *ep.DeepCopy())
		}
		remaining = remaining[n:]
	}
	for _, s := range changed {
		fill(s)
	}
	for _, s := range unchanged {
		before := len(s.Endpoints)
		fill(s)
		if len(s.Endpoints) != before {
			changed = append(changed, s)
		}
	}
	for _, s := range changed {
		if len(s.Endpoints) == 0 {
			p.delete = append(p.delete, s)
			continue
		}
		s.Labels = maps.Clone(labels)
		s.Ports = clonePorts(g.ports)
		setTrigger(s, triggerTime)
		p.update = append(p.update, s)
	}
	for len(remaining) > 0 {
		n := min(maxPerSlice, len(remaining))
		s := newSlice(svc, labels, g.ports, triggerTime)
		for _, ep := range remaining[:n] {
			s.Endpoints = append(s.Endpoints, *ep.DeepCopy())
		}
		remaining = remaining[n:]
		p.create = append(p.create, s)
	}
}

// placeholder keeps one empty slice without ports and deletes the rest.
func placeholder(svc *corev1.Service, p plan, buckets map[string][]*discoveryv1.EndpointSlice, labels map[string]string, triggerTime string) plan {
	var keep *discoveryv1.EndpointSlice
	for _, k := range slices.Sorted(maps.Keys(buckets)) {
		for _, s := range buckets[k] {
			if keep == nil && len(s.Endpoints) == 0 && len(s.Ports) == 0 {
				keep = s
				continue
			}
			p.delete = append(p.delete, s)
		}
	}
	switch {
	case keep == nil:
		p.create = append(p.create, newSlice(svc, labels, nil, triggerTime))
	case !maps.Equal(keep.Labels, labels):
		next := keep.DeepCopy()
		next.Labels = maps.Clone(labels)
		setTrigger(next, triggerTime)
		p.update = append(p.update, next)
	}
	return p
}

func newSlice(svc *corev1.Service, labels map[string]string, ports []discoveryv1.EndpointPort, triggerTime string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    svc.Name + "-",
			Namespace:       svc.Namespace,
			Labels:          maps.Clone(labels),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(svc, serviceGVK)},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       clonePorts(ports),
		Endpoints:   []discoveryv1.Endpoint{},
	}
	if s.Ports == nil {
		s.Ports = []discoveryv1.EndpointPort{}
	}
	setTrigger(s, triggerTime)
	return s
}

// sliceLabels are the service's labels plus the labels that tie a slice to
// it, as upstream sets them.
func sliceLabels(svc *corev1.Service) map[string]string {
	l := maps.Clone(svc.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[discoveryv1.LabelServiceName] = svc.Name
	l[discoveryv1.LabelManagedBy] = ManagedBy
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		l[corev1.IsHeadlessService] = ""
	} else {
		delete(l, corev1.IsHeadlessService)
	}
	return l
}

func setTrigger(s *discoveryv1.EndpointSlice, t string) {
	if t == "" {
		return
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[annotationTriggerTime] = t
}

func clonePorts(ports []discoveryv1.EndpointPort) []discoveryv1.EndpointPort {
	out := make([]discoveryv1.EndpointPort, 0, len(ports))
	for _, p := range ports {
		out = append(out, *p.DeepCopy())
	}
	return out
}

func sortedByName(in []*discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice {
	out := slices.Clone(in)
	out = slices.DeleteFunc(out, func(s *discoveryv1.EndpointSlice) bool { return s == nil })
	slices.SortFunc(out, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	return out
}
