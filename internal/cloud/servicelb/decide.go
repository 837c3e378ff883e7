package servicelb

import (
	"fmt"
	"reflect"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Finalizer keeps a Service of type LoadBalancer from disappearing before
// its load balancer is deleted (upstream's name, so that other tools
// recognise it).
const Finalizer = "service.kubernetes.io/load-balancer-cleanup"

// toBeDeletedTaint marks a node the cluster autoscaler is about to remove;
// load balancers stop sending it traffic.
const toBeDeletedTaint = "ToBeDeletedByClusterAutoscaler"

// wantsLoadBalancer: a Service of type LoadBalancer without a
// loadBalancerClass. A class names another implementation; only the
// default (nil) class is ours.
func wantsLoadBalancer(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass == nil
}

func hasFinalizer(svc *corev1.Service) bool {
	return slices.Contains(svc.Finalizers, Finalizer)
}

// needsCleanup: the Service carries our finalizer but is being deleted or
// no longer wants a load balancer from us.
func needsCleanup(svc *corev1.Service) bool {
	return hasFinalizer(svc) && (svc.DeletionTimestamp != nil || !wantsLoadBalancer(svc))
}

// action is what a sync does to one Service.
type action int

const (
	// actionNone: not ours, nothing to do.
	actionNone action = iota
	// actionEnsure: add the finalizer, ensure the load balancer, write
	// its status.
	actionEnsure
	// actionCleanup: delete the load balancer, remove the finalizer,
	// clear the status we wrote.
	actionCleanup
)

// decide says what to do with svc; provisioned reports whether the
// provider holds a load balancer for it (a finalizer may have been
// removed by hand).
func decide(svc *corev1.Service, provisioned bool) action {
	switch {
	case wantsLoadBalancer(svc) && svc.DeletionTimestamp == nil:
		return actionEnsure
	case hasFinalizer(svc) || provisioned:
		return actionCleanup
	}
	return actionNone
}

// change is a spec change worth an event on the Service, as upstream
// reports them ("Type", "LoadbalancerIP", ...).
type change struct {
	reason, message string
}

// needsUpdate reports whether the change from old to cur matters to the
// load balancer, and the event to record for it, if any. Status,
// finalizers and other metadata changes (the controller's own writes) do
// not matter.
func needsUpdate(old, cur *corev1.Service) (bool, *change) {
	wantOld, wantCur := wantsLoadBalancer(old), wantsLoadBalancer(cur)
	switch {
	case !wantOld && !wantCur:
		return false, nil
	case wantOld != wantCur:
		return true, &change{"Type", fmt.Sprintf("%v -> %v", old.Spec.Type, cur.Spec.Type)}
	case !slices.Equal(old.Spec.LoadBalancerSourceRanges, cur.Spec.LoadBalancerSourceRanges):
		return true, &change{"LoadBalancerSourceRanges", fmt.Sprintf("%v -> %v", old.Spec.LoadBalancerSourceRanges, cur.Spec.LoadBalancerSourceRanges)}
	case !portsEqual(old.Spec.Ports, cur.Spec.Ports),
		old.Spec.SessionAffinity != cur.Spec.SessionAffinity,
		!reflect.DeepEqual(old.Spec.SessionAffinityConfig, cur.Spec.SessionAffinityConfig):
		return true, nil
	case old.Spec.LoadBalancerIP != cur.Spec.LoadBalancerIP:
		return true, &change{"LoadbalancerIP", fmt.Sprintf("%v -> %v", old.Spec.LoadBalancerIP, cur.Spec.LoadBalancerIP)}
	case len(old.Spec.ExternalIPs) != len(cur.Spec.ExternalIPs):
		return true, &change{"ExternalIP", fmt.Sprintf("Count: %v -> %v", len(old.Spec.ExternalIPs), len(cur.Spec.ExternalIPs))}
	}
	for i := range old.Spec.ExternalIPs {
		if old.Spec.ExternalIPs[i] != cur.Spec.ExternalIPs[i] {
			return true, &change{"ExternalIP", fmt.Sprintf("Added: %v", cur.Spec.ExternalIPs[i])}
		}
	}
	switch {
	case !reflect.DeepEqual(old.Annotations, cur.Annotations):
		return true, nil
	case old.UID != cur.UID:
		return true, &change{"UID", fmt.Sprintf("%v -> %v", old.UID, cur.UID)}
	case old.Spec.ExternalTrafficPolicy != cur.Spec.ExternalTrafficPolicy:
		return true, &change{"ExternalTrafficPolicy", fmt.Sprintf("%v -> %v", old.Spec.ExternalTrafficPolicy, cur.Spec.ExternalTrafficPolicy)}
	case old.Spec.HealthCheckNodePort != cur.Spec.HealthCheckNodePort:
		return true, &change{"HealthCheckNodePort", fmt.Sprintf("%v -> %v", old.Spec.HealthCheckNodePort, cur.Spec.HealthCheckNodePort)}
	}
	return false, nil
}

// portsEqual compares the port fields a load balancer uses.
func portsEqual(a, b []corev1.ServicePort) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.ServicePort) bool {
		return x.Name == y.Name && x.Protocol == y.Protocol && x.Port == y.Port &&
			x.NodePort == y.NodePort && x.TargetPort == y.TargetPort
	})
}

// statusEqual compares load-balancer statuses, ingress points in order.
func statusEqual(a, b *corev1.LoadBalancerStatus) bool {
	return slices.EqualFunc(a.Ingress, b.Ingress, func(x, y corev1.LoadBalancerIngress) bool {
		return x.IP == y.IP && x.Hostname == y.Hostname &&
			reflect.DeepEqual(x.IPMode, y.IPMode) && reflect.DeepEqual(x.Ports, y.Ports)
	})
}

// eligibleNode: a node a load balancer may send traffic to — Ready, not
// excluded by the node.kubernetes.io/exclude-from-external-load-balancers
// label, not about to be removed by the cluster autoscaler.
func eligibleNode(n *corev1.Node) bool {
	if _, excluded := n.Labels[corev1.LabelNodeExcludeBalancers]; excluded {
		return false
	}
	for _, t := range n.Spec.Taints {
		if t.Key == toBeDeletedTaint {
			return false
		}
	}
	return readyStatus(n) == corev1.ConditionTrue
}

func readyStatus(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

// nodeChanged: a node update that may change whether it is eligible.
func nodeChanged(old, cur *corev1.Node) bool {
	return old.Spec.Unschedulable != cur.Spec.Unschedulable ||
		!reflect.DeepEqual(old.Labels, cur.Labels) ||
		!reflect.DeepEqual(old.Spec.Taints, cur.Spec.Taints) ||
		readyStatus(old) != readyStatus(cur)
}
