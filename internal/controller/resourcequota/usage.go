package resourcequota

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// snapshot is what a namespace holds, as the caches show it.
type snapshot struct {
	pods       []*corev1.Pod
	services   []*corev1.Service
	pvcs       []*corev1.PersistentVolumeClaim
	configMaps int
	secrets    int
	quotas     int
	// replicationControllers counts core/v1 ReplicationControllers.
	replicationControllers int
	// counts holds the objects of countedKinds, by CountName.
	counts map[corev1.ResourceName]int
}

// countedKinds are the resources outside the core group whose objects a
// quota counts (count/replicasets.apps). Upstream counts every resource the
// server serves, through a metadata informer per resource; skiff counts
// these, whose informers the controller manager already keeps, and leaves
// count/<resource>.<group> of other resources unmeasured (neither counted
// here nor charged by admission).
var countedKinds = []schema.GroupVersionResource{
	{Group: "apps", Version: "v1", Resource: "replicasets"},
	{Group: "apps", Version: "v1", Resource: "deployments"},
	{Group: "apps", Version: "v1", Resource: "statefulsets"},
	{Group: "apps", Version: "v1", Resource: "daemonsets"},
	{Group: "batch", Version: "v1", Resource: "jobs"},
	{Group: "batch", Version: "v1", Resource: "cronjobs"},
}

// CountName is the object count resource of gr: count/<resource> for the
// core group, count/<resource>.<group> otherwise (upstream's
// ObjectCountQuotaResourceNameFor).
func CountName(gr schema.GroupResource) corev1.ResourceName {
	if gr.Group == "" {
		return corev1.ResourceName("count/" + gr.Resource)
	}
	return corev1.ResourceName("count/" + gr.Resource + "." + gr.Group)
}

const (
	storageClassSuffix    = ".storageclass.storage.k8s.io/"
	resourceRequestsStore = corev1.ResourceRequestsStorage
)

// usage computes status.used of quota over snap at now: one entry for
// every resource of spec.hard that skiff knows how to measure. Resources it
// does not know (count/<resource>.<group> for other resources, for
// example) are left out rather than reported wrongly.
//
// Pods count when not Succeeded or Failed and not past their deletion
// grace period. Compute resources (cpu, memory, ephemeral-storage, their
// requests./limits. forms and extended resources) are summed over those
// pods, each pod's value being max(sum over containers, largest init
// container) plus pod overhead. A quota with scopes (spec.scopes or
// spec.scopeSelector) measures only the pods matching every scope, and
// nothing but pod resources.
func usage(quota *corev1.ResourceQuota, snap snapshot, now time.Time) corev1.ResourceList {
	used := corev1.ResourceList{}
	if quota == nil {
		return used
	}
	scoped := len(quota.Spec.Scopes) > 0 || (quota.Spec.ScopeSelector != nil && len(quota.Spec.ScopeSelector.MatchExpressions) > 0)
	var pods []*corev1.Pod
	for _, p := range snap.pods {
		if p != nil && podCounts(p, now) && matchesScopes(quota, p) {
			pods = append(pods, p)
		}
	}
	for name := range quota.Spec.Hard {
		if q, ok := podUsage(name, pods); ok {
			used[name] = q
			continue
		}
		if scoped {
			continue
		}
		if q, ok := objectUsage(name, snap); ok {
			used[name] = q
		}
	}
	return used
}

// podUsage measures a pod resource; ok is false for other resources.
func podUsage(name corev1.ResourceName, pods []*corev1.Pod) (resource.Quantity, bool) {
	switch name {
	case corev1.ResourcePods, "count/pods":
		return *resource.NewQuantity(int64(len(pods)), resource.DecimalSI), true
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return sumPods(pods, name, true), true
	case resourceRequestsStore:
		return resource.Quantity{}, false
	}
	s := string(name)
	switch {
	case strings.HasPrefix(s, "requests."):
		return sumPods(pods, corev1.ResourceName(strings.TrimPrefix(s, "requests.")), true), true
	case strings.HasPrefix(s, "limits."):
		return sumPods(pods, corev1.ResourceName(strings.TrimPrefix(s, "limits.")), false), true
	}
	return resource.Quantity{}, false
}

// objectUsage measures an object count or storage resource.
func objectUsage(name corev1.ResourceName, snap snapshot) (resource.Quantity, bool) {
	count := func(n int) (resource.Quantity, bool) {
		return *resource.NewQuantity(int64(n), resource.DecimalSI), true
	}
	switch name {
	case corev1.ResourceServices, "count/services":
		return count(len(snap.services))
	case corev1.ResourceConfigMaps, "count/configmaps":
		return count(snap.configMaps)
	case corev1.ResourceSecrets, "count/secrets":
		return count(snap.secrets)
	case corev1.ResourcePersistentVolumeClaims, "count/persistentvolumeclaims":
		return count(len(snap.pvcs))
	case corev1.ResourceReplicationControllers, "count/replicationcontrollers":
		return count(snap.replicationControllers)
	case corev1.ResourceQuotas, "count/resourcequotas":
		return count(snap.quotas)
	case corev1.ResourceServicesLoadBalancers:
		n := 0
		for _, s := range snap.services {
			if s != nil && s.Spec.Type == corev1.ServiceTypeLoadBalancer {
				n++
			}
		}
		return count(n)
	case corev1.ResourceServicesNodePorts:
		n := 0
		for _, s := range snap.services {
			if s != nil {
				n += nodePorts(s)
			}
		}
		return count(n)
	case resourceRequestsStore:
		return sumStorage(snap.pvcs, nil), true
	}
	if isCounted(name) {
		return count(snap.counts[name])
	}
	s := string(name)
	if i := strings.Index(s, storageClassSuffix); i > 0 {
		class := s[:i]
		switch corev1.ResourceName(s[i+len(storageClassSuffix):]) {
		case resourceRequestsStore:
			return sumStorage(snap.pvcs, &class), true
		case corev1.ResourcePersistentVolumeClaims:
			n := 0
			for _, c := range snap.pvcs {
				if c != nil && storageClass(c) == class {
					n++
				}
			}
			return count(n)
		}
	}
	return resource.Quantity{}, false
}

// isCounted reports whether name is the count resource of one of
// countedKinds.
func isCounted(name corev1.ResourceName) bool {
	for _, gvr := range countedKinds {
		if CountName(gvr.GroupResource()) == name {
			return true
		}
	}
	return false
}

// nodePorts is the number of node ports s holds: every port of a NodePort
// service or of a LoadBalancer that allocates them, only the ports with a
// nodePort set of a LoadBalancer with allocateLoadBalancerNodePorts false
// (as upstream's service evaluator counts).
func nodePorts(s *corev1.Service) int {
	switch s.Spec.Type {
	case corev1.ServiceTypeNodePort:
		return len(s.Spec.Ports)
	case corev1.ServiceTypeLoadBalancer:
		if s.Spec.AllocateLoadBalancerNodePorts == nil || *s.Spec.AllocateLoadBalancerNodePorts {
			return len(s.Spec.Ports)
		}
		n := 0
		for _, p := range s.Spec.Ports {
			if p.NodePort != 0 {
				n++
			}
		}
		return n
	}
	return 0
}

func sumStorage(pvcs []*corev1.PersistentVolumeClaim, class *string) resource.Quantity {
	total := resource.Quantity{Format: resource.BinarySI}
	for _, c := range pvcs {
		if c == nil || (class != nil && storageClass(c) != *class) {
			continue
		}
		if q, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
			total.Add(q)
		}
	}
	return total
}

func storageClass(c *corev1.PersistentVolumeClaim) string {
	if c.Spec.StorageClassName != nil {
		return *c.Spec.StorageClassName
	}
	return c.Annotations[corev1.BetaStorageClassAnnotation]
}

// podCounts reports whether a pod uses quota: not finished, and not past
// the end of its deletion grace period.
func podCounts(p *corev1.Pod, now time.Time) bool {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false
	}
	if p.DeletionTimestamp != nil && p.DeletionGracePeriodSeconds != nil {
		end := p.DeletionTimestamp.Add(time.Duration(*p.DeletionGracePeriodSeconds) * time.Second)
		if now.After(end) {
			return false
		}
	}
	return true
}

// sumPods sums one resource's requests (or limits) over pods.
func sumPods(pods []*corev1.Pod, name corev1.ResourceName, requests bool) resource.Quantity {
	total := resource.Quantity{Format: resource.DecimalSI}
	if name == corev1.ResourceMemory || name == corev1.ResourceEphemeralStorage {
		total.Format = resource.BinarySI
	}
	for _, p := range pods {
		q := podValue(p, name, requests)
		total.Add(q)
	}
	return total
}

// podValue is one pod's request (or limit) of a resource.
func podValue(p *corev1.Pod, name corev1.ResourceName, requests bool) resource.Quantity {
	pick := func(r corev1.ResourceRequirements) (resource.Quantity, bool) {
		if requests {
			q, ok := r.Requests[name]
			return q, ok
		}
		q, ok := r.Limits[name]
		return q, ok
	}
	var sum resource.Quantity
	for _, c := range p.Spec.Containers {
		if q, ok := pick(c.Resources); ok {
			sum.Add(q)
		}
	}
	for _, c := range p.Spec.InitContainers {
		if q, ok := pick(c.Resources); ok && q.Cmp(sum) > 0 {
			sum = q.DeepCopy()
		}
	}
	if q, ok := p.Spec.Overhead[name]; ok {
		sum.Add(q)
	}
	return sum
}

// matchesScopes reports whether pod p matches every scope of quota.
func matchesScopes(quota *corev1.ResourceQuota, p *corev1.Pod) bool {
	for _, s := range quota.Spec.Scopes {
		if !matchesScope(corev1.ScopedResourceSelectorRequirement{ScopeName: s, Operator: corev1.ScopeSelectorOpExists}, p) {
			return false
		}
	}
	if quota.Spec.ScopeSelector != nil {
		for _, r := range quota.Spec.ScopeSelector.MatchExpressions {
			if !matchesScope(r, p) {
				return false
			}
		}
	}
	return true
}

// matchesScope reports whether pod p is in one scope. CrossNamespacePodAffinity
// and unknown scopes match nothing (skiff does not implement them).
func matchesScope(r corev1.ScopedResourceSelectorRequirement, p *corev1.Pod) bool {
	terminating := p.Spec.ActiveDeadlineSeconds != nil && *p.Spec.ActiveDeadlineSeconds >= 0
	switch r.ScopeName {
	case corev1.ResourceQuotaScopeTerminating:
		return terminating
	case corev1.ResourceQuotaScopeNotTerminating:
		return !terminating
	case corev1.ResourceQuotaScopeBestEffort:
		return bestEffort(p)
	case corev1.ResourceQuotaScopeNotBestEffort:
		return !bestEffort(p)
	case corev1.ResourceQuotaScopePriorityClass:
		pc := p.Spec.PriorityClassName
		switch r.Operator {
		case corev1.ScopeSelectorOpExists:
			return pc != ""
		case corev1.ScopeSelectorOpDoesNotExist:
			return pc == ""
		case corev1.ScopeSelectorOpIn:
			for _, v := range r.Values {
				if v == pc {
					return true
				}
			}
			return false
		case corev1.ScopeSelectorOpNotIn:
			for _, v := range r.Values {
				if v == pc {
					return false
				}
			}
			return true
		}
	}
	return false
}

// bestEffort reports whether no container sets a cpu or memory request or
// limit (the BestEffort QoS class).
func bestEffort(p *corev1.Pod) bool {
	all := append(append([]corev1.Container(nil), p.Spec.InitContainers...), p.Spec.Containers...)
	for _, c := range all {
		for _, rl := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
			for _, n := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q, ok := rl[n]; ok && !q.IsZero() {
					return false
				}
			}
		}
	}
	return true
}
