package endpointslice

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-io/skiff/internal/controller/podset"
)

// group is a set of endpoints that share one port mapping: pods that
// resolve a service's named target ports to different container ports end
// up in different groups, hence in different slices.
type group struct {
	ports     []discoveryv1.EndpointPort
	endpoints []discoveryv1.Endpoint
}

// desired returns the endpoints a Service should have, grouped by port
// mapping, keyed by portsKey. pods are the pods matching the service's
// selector in its namespace; zoneOf returns a node's
// topology.kubernetes.io/zone label ("" if unknown).
//
// A pod is an endpoint when it has an IPv4 pod IP and has not finished
// (Succeeded or Failed). Its conditions are: serving = pod Ready;
// terminating = being deleted; ready = serving and not terminating, or
// always when the service publishes not-ready addresses.
func desired(svc *corev1.Service, pods []*corev1.Pod, zoneOf func(node string) string) map[string]*group {
	out := map[string]*group{}
	if svc == nil {
		return out
	}
	for _, p := range pods {
		if p == nil {
			continue
		}
		ep, ok := podEndpoint(svc, p, zoneOf)
		if !ok {
			continue
		}
		ports := resolvePorts(svc, p)
		k := portsKey(ports)
		g := out[k]
		if g == nil {
			g = &group{ports: ports}
			out[k] = g
		}
		g.endpoints = append(g.endpoints, ep)
	}
	for _, g := range out {
		slices.SortFunc(g.endpoints, func(a, b discoveryv1.Endpoint) int { return strings.Compare(endpointKey(a), endpointKey(b)) })
	}
	return out
}

func podEndpoint(svc *corev1.Service, p *corev1.Pod, zoneOf func(string) string) (discoveryv1.Endpoint, bool) {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return discoveryv1.Endpoint{}, false
	}
	ip := PodIPv4(p)
	if ip == "" {
		return discoveryv1.Endpoint{}, false
	}
	serving := podset.IsReady(p)
	terminating := p.DeletionTimestamp != nil
	ready := serving && !terminating
	if svc.Spec.PublishNotReadyAddresses {
		ready = true
	}
	ep := discoveryv1.Endpoint{
		Addresses: []string{ip},
		Conditions: discoveryv1.EndpointConditions{
			Ready:       &ready,
			Serving:     &serving,
			Terminating: &terminating,
		},
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
	}
	if p.Spec.NodeName != "" {
		node := p.Spec.NodeName
		ep.NodeName = &node
		if zoneOf != nil {
			if z := zoneOf(node); z != "" {
				ep.Zone = &z
			}
		}
	}
	if p.Spec.Hostname != "" && p.Spec.Subdomain == svc.Name && p.Namespace == svc.Namespace {
		h := p.Spec.Hostname
		ep.Hostname = &h
	}
	return ep, true
}

// PodIPv4 returns the pod's IPv4 address, or "".
func PodIPv4(p *corev1.Pod) string {
	ips := []string{p.Status.PodIP}
	for _, ip := range p.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			return a.String()
		}
	}
	return ""
}

// resolvePorts maps the service's ports onto pod p: a numeric targetPort is
// used as is (0 means the service port), a named one is looked up among the
// pod's container ports of the same protocol; a name the pod does not
// declare leaves that port out for this pod, as upstream does.
func resolvePorts(svc *corev1.Service, p *corev1.Pod) []discoveryv1.EndpointPort {
	var out []discoveryv1.EndpointPort
	for _, sp := range svc.Spec.Ports {
		proto := sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		port, ok := TargetPort(sp, proto, p)
		if !ok {
			continue
		}
		name := sp.Name
		ep := discoveryv1.EndpointPort{Name: &name, Port: &port, Protocol: &proto}
		if sp.AppProtocol != nil {
			ap := *sp.AppProtocol
			ep.AppProtocol = &ap
		}
		out = append(out, ep)
	}
	return out
}

func TargetPort(sp corev1.ServicePort, proto corev1.Protocol, p *corev1.Pod) (int32, bool) {
	tp := sp.TargetPort
	if tp.Type == intstr.String && tp.StrVal != "" {
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				cproto := cp.Protocol
				if cproto == "" {
					cproto = corev1.ProtocolTCP
				}
				if cp.Name == tp.StrVal && cproto == proto {
					return cp.ContainerPort, true
				}
			}
		}
		return 0, false
	}
	if tp.Type == intstr.Int && tp.IntVal > 0 {
		return tp.IntVal, true
	}
	return sp.Port, true
}

// portsKey identifies a port mapping independent of order.
func portsKey(ports []discoveryv1.EndpointPort) string {
	parts := make([]string, 0, len(ports))
	for _, p := range ports {
		parts = append(parts, fmt.Sprintf("%s/%s/%d/%s", deref(p.Name), derefProto(p.Protocol), deref32(p.Port), deref(p.AppProtocol)))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// endpointKey identifies an endpoint across updates: the pod it stands for,
// or its first address for endpoints without a pod.
func endpointKey(ep discoveryv1.Endpoint) string {
	if ep.TargetRef != nil && ep.TargetRef.Name != "" {
		return "pod/" + ep.TargetRef.Namespace + "/" + ep.TargetRef.Name
	}
	if len(ep.Addresses) > 0 {
		return "ip/" + ep.Addresses[0]
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefProto(p *corev1.Protocol) string {
	if p == nil {
		return ""
	}
	return string(*p)
}

func deref32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
