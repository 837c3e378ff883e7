package resourcequota

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// This file measures one object, for quota admission: the usage a write
// adds to a quota is what usage() counts for a namespace holding only that
// object, so that admission charges exactly what the controller will find
// (a resource one of them measures and the other not would leave status.used
// wrong until the next resync, or refuse every write with "status unknown").

// Measures reports whether quota measures objects of gr: pods, services,
// persistentvolumeclaims, configmaps, secrets, replicationcontrollers,
// resourcequotas and the kinds of countedKinds.
func Measures(gr schema.GroupResource) bool {
	_, ok := kinds[gr]
	return ok || isCounted(CountName(gr))
}

// kind is how one resource's objects use quota.
type kind struct {
	// affects reports whether a quota resource measures these objects.
	affects func(corev1.ResourceName) bool
	// snapshot is a namespace holding only obj (false when obj is not of
	// the kind's type).
	snapshot func(obj runtime.Object) (snapshot, bool)
}

func names(n ...corev1.ResourceName) func(corev1.ResourceName) bool {
	return func(name corev1.ResourceName) bool { return slices.Contains(n, name) }
}

var kinds = map[schema.GroupResource]kind{
	{Resource: "pods"}: {
		affects: func(name corev1.ResourceName) bool { _, ok := podUsage(name, nil); return ok },
		snapshot: func(obj runtime.Object) (snapshot, bool) {
			p, ok := obj.(*corev1.Pod)
			return snapshot{pods: []*corev1.Pod{p}}, ok
		},
	},
	{Resource: "services"}: {
		affects: names(corev1.ResourceServices, "count/services", corev1.ResourceServicesNodePorts, corev1.ResourceServicesLoadBalancers),
		snapshot: func(obj runtime.Object) (snapshot, bool) {
			s, ok := obj.(*corev1.Service)
			return snapshot{services: []*corev1.Service{s}}, ok
		},
	},
	{Resource: "persistentvolumeclaims"}: {
		affects: func(name corev1.ResourceName) bool {
			switch name {
			case corev1.ResourcePersistentVolumeClaims, "count/persistentvolumeclaims", resourceRequestsStore:
				return true
			}
			s := string(name)
			return strings.HasSuffix(s, storageClassSuffix+string(resourceRequestsStore)) ||
				strings.HasSuffix(s, storageClassSuffix+string(corev1.ResourcePersistentVolumeClaims))
		},
		snapshot: func(obj runtime.Object) (snapshot, bool) {
			c, ok := obj.(*corev1.PersistentVolumeClaim)
			return snapshot{pvcs: []*corev1.PersistentVolumeClaim{c}}, ok
		},
	},
	{Resource: "configmaps"}: {
		affects:  names(corev1.ResourceConfigMaps, "count/configmaps"),
		snapshot: func(runtime.Object) (snapshot, bool) { return snapshot{configMaps: 1}, true },
	},
	{Resource: "secrets"}: {
		affects:  names(corev1.ResourceSecrets, "count/secrets"),
		snapshot: func(runtime.Object) (snapshot, bool) { return snapshot{secrets: 1}, true },
	},
	{Resource: "replicationcontrollers"}: {
		affects:  names(corev1.ResourceReplicationControllers, "count/replicationcontrollers"),
		snapshot: func(runtime.Object) (snapshot, bool) { return snapshot{replicationControllers: 1}, true },
	},
	{Resource: "resourcequotas"}: {
		affects:  names(corev1.ResourceQuotas, "count/resourcequotas"),
		snapshot: func(runtime.Object) (snapshot, bool) { return snapshot{quotas: 1}, true },
	},
}

// kindOf returns the kind of gr's objects: one of kinds, or a counted
// workload kind.
func kindOf(gr schema.GroupResource) (kind, bool) {
	if k, ok := kinds[gr]; ok {
		return k, true
	}
	cn := CountName(gr)
	if !isCounted(cn) {
		return kind{}, false
	}
	return kind{
		affects: names(cn),
		snapshot: func(runtime.Object) (snapshot, bool) {
			return snapshot{counts: map[corev1.ResourceName]int{cn: 1}}, true
		},
	}, true
}

// MatchingResources returns the resources of quota's status.hard that
// measure objects of gr (upstream's evaluator MatchingResources over the
// enforced hard limits), sorted.
func MatchingResources(quota *corev1.ResourceQuota, gr schema.GroupResource) []corev1.ResourceName {
	k, ok := kindOf(gr)
	if !ok {
		return nil
	}
	var out []corev1.ResourceName
	for name := range quota.Status.Hard {
		if k.affects(name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Matches reports whether quota constrains obj, an object of gr: some
// resource of its status.hard measures gr's objects, and obj is in every
// scope of the quota. Only pods have scopes: a quota with scopes matches
// no other object, as upstream.
func Matches(quota *corev1.ResourceQuota, gr schema.GroupResource, obj runtime.Object) bool {
	if len(MatchingResources(quota, gr)) == 0 {
		return false
	}
	if !scoped(quota) {
		return true
	}
	p, ok := obj.(*corev1.Pod)
	return ok && gr == (schema.GroupResource{Resource: "pods"}) && matchesScopes(quota, p)
}

// ObjectUsage is the usage obj, an object of gr, adds to quota at now:
// for every resource of quota's status.hard that measures it, what the
// controller counts for it (zero entries left out). It is empty when the
// quota does not match obj.
func ObjectUsage(quota *corev1.ResourceQuota, gr schema.GroupResource, obj runtime.Object, now time.Time) corev1.ResourceList {
	out := corev1.ResourceList{}
	k, ok := kindOf(gr)
	if !ok || !Matches(quota, gr, obj) {
		return out
	}
	snap, ok := k.snapshot(obj)
	if !ok {
		return out
	}
	hard := corev1.ResourceList{}
	for _, name := range MatchingResources(quota, gr) {
		hard[name] = quota.Status.Hard[name]
	}
	measured := &corev1.ResourceQuota{Spec: corev1.ResourceQuotaSpec{Hard: hard, Scopes: quota.Spec.Scopes, ScopeSelector: quota.Spec.ScopeSelector}}
	for name, q := range usage(measured, snap, now) {
		if !q.IsZero() {
			out[name] = q
		}
	}
	return out
}

func scoped(quota *corev1.ResourceQuota) bool {
	return len(quota.Spec.Scopes) > 0 || (quota.Spec.ScopeSelector != nil && len(quota.Spec.ScopeSelector.MatchExpressions) > 0)
}

// IsTerminating reports whether pod is in the Terminating scope (it sets
// activeDeadlineSeconds).
func IsTerminating(pod *corev1.Pod) bool {
	return pod.Spec.ActiveDeadlineSeconds != nil && *pod.Spec.ActiveDeadlineSeconds >= 0
}

// constrained are the pod resources whose quota requires every container
// to state them.
var constrained = []corev1.ResourceName{
	corev1.ResourceCPU, corev1.ResourceMemory,
	corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory,
	corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory,
}

// Constraints checks that pod states what a quota limiting required
// needs: a cpu (memory) request in every container and init container
// for cpu and requests.cpu (memory, requests.memory), a limit for
// limits.cpu (limits.memory). The error lists what is missing, by
// resource, as upstream's: "must specify limits.cpu for: a,b; memory for:
// a". A pod that sets pod-level cpu or memory resources is not checked.
func Constraints(required []corev1.ResourceName, pod *corev1.Pod) error {
	if r := pod.Spec.Resources; r != nil {
		for _, l := range []corev1.ResourceList{r.Requests, r.Limits} {
			if _, ok := l[corev1.ResourceCPU]; ok {
				return nil
			}
			if _, ok := l[corev1.ResourceMemory]; ok {
				return nil
			}
		}
	}
	var need []corev1.ResourceName
	for _, n := range required {
		if slices.Contains(constrained, n) && !slices.Contains(need, n) {
			need = append(need, n)
		}
	}
	if len(need) == 0 {
		return nil
	}
	missing := map[corev1.ResourceName][]string{}
	containers := append(append([]corev1.Container(nil), pod.Spec.Containers...), pod.Spec.InitContainers...)
	for _, c := range containers {
		for _, n := range need {
			if !states(c.Resources, n) && !slices.Contains(missing[n], c.Name) {
				missing[n] = append(missing[n], c.Name)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(missing)) {
		cs := missing[n]
		slices.Sort(cs)
		parts = append(parts, fmt.Sprintf("%s for: %s", n, strings.Join(cs, ",")))
	}
	return fmt.Errorf("must specify %s", strings.Join(parts, "; "))
}

// states reports whether a container's resources give quota resource n.
func states(r corev1.ResourceRequirements, n corev1.ResourceName) bool {
	list, base := r.Requests, n
	switch {
	case strings.HasPrefix(string(n), "requests."):
		base = corev1.ResourceName(strings.TrimPrefix(string(n), "requests."))
	case strings.HasPrefix(string(n), "limits."):
		list, base = r.Limits, corev1.ResourceName(strings.TrimPrefix(string(n), "limits."))
	}
	_, ok := list[base]
	return ok
}
