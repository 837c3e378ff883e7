package endpoints

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-io/skiff/internal/controller/endpointslice"
	"github.com/skiff-io/skiff/internal/controller/podset"
)

// MaxAddresses is upstream's cap on the addresses of one Endpoints object;
// beyond it the object is truncated and annotated over-capacity.
const MaxAddresses = 1000

// subsets returns the Endpoints subsets of svc over pods (the pods
// matching its selector), in a canonical order (subsets by port set,
// addresses by IP), and whether they were truncated to maxAddresses.
//
// A pod contributes when it has an IPv4 pod IP, has not finished and is not
// being deleted (unless the service publishes not-ready addresses, as
// upstream). It is a ready address when Ready or when the service publishes
// not-ready addresses, else a not-ready address. Pods whose named target
// ports resolve differently end up in different subsets; a service without
// ports (headless) gives subsets with addresses only.
func subsets(svc *corev1.Service, pods []*corev1.Pod, maxAddresses int) ([]corev1.EndpointSubset, bool) {
	if svc == nil {
		return nil, false
	}
	type bucket struct {
		ports           []corev1.EndpointPort
		ready, notReady []corev1.EndpointAddress
	}
	byPorts := map[string]*bucket{}
	for _, p := range pods {
		if p == nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if p.DeletionTimestamp != nil && !svc.Spec.PublishNotReadyAddresses {
			continue
		}
		ip := endpointslice.PodIPv4(p)
		if ip == "" {
			continue
		}
		ports := resolvePorts(svc, p)
		if len(svc.Spec.Ports) > 0 && len(ports) == 0 {
			continue // none of the service's ports exist on this pod
		}
		k := portsKey(ports)
		b := byPorts[k]
		if b == nil {
			b = &bucket{ports: ports}
			byPorts[k] = b
		}
		addr := corev1.EndpointAddress{
			IP:        ip,
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
		}
		if p.Spec.NodeName != "" {
			n := p.Spec.NodeName
			addr.NodeName = &n
		}
		if p.Spec.Hostname != "" && p.Spec.Subdomain == svc.Name && p.Namespace == svc.Namespace {
			addr.Hostname = p.Spec.Hostname
		}
		if svc.Spec.PublishNotReadyAddresses || podset.IsReady(p) {
			b.ready = append(b.ready, addr)
		} else {
			b.notReady = append(b.notReady, addr)
		}
	}
	keys := make([]string, 0, len(byPorts))
	for k := range byPorts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]corev1.EndpointSubset, 0, len(keys))
	total := 0
	for _, k := range keys {
		b := byPorts[k]
		sortAddrs(b.ready)
		sortAddrs(b.notReady)
		total += len(b.ready) + len(b.notReady)
		out = append(out, corev1.EndpointSubset{Addresses: b.ready, NotReadyAddresses: b.notReady, Ports: b.ports})
	}
	if maxAddresses <= 0 || total <= maxAddresses {
		return out, false
	}
	return truncate(out, maxAddresses), true
}

// truncate keeps at most max addresses, ready ones first, subsets in
// order. Upstream spreads the cut proportionally over subsets; the count
// and the preference for ready addresses are the same.
func truncate(in []corev1.EndpointSubset, max int) []corev1.EndpointSubset {
	left := max
	out := make([]corev1.EndpointSubset, len(in))
	for i, s := range in {
		n := min(left, len(s.Addresses))
		out[i] = corev1.EndpointSubset{Addresses: s.Addresses[:n], Ports: s.Ports}
		left -= n
	}
	for i, s := range in {
		n := min(left, len(s.NotReadyAddresses))
		out[i].NotReadyAddresses = s.NotReadyAddresses[:n]
		left -= n
	}
	return slices.DeleteFunc(out, func(s corev1.EndpointSubset) bool {
		return len(s.Addresses) == 0 && len(s.NotReadyAddresses) == 0
	})
}

func sortAddrs(a []corev1.EndpointAddress) {
	slices.SortFunc(a, func(x, y corev1.EndpointAddress) int {
		if c := strings.Compare(x.IP, y.IP); c != 0 {
			return c
		}
		return strings.Compare(refName(x.TargetRef), refName(y.TargetRef))
	})
}

func refName(r *corev1.ObjectReference) string {
	if r == nil {
		return ""
	}
	return r.Name
}

// resolvePorts maps the service's ports onto pod p (named target ports
// looked up among the pod's container ports of the same protocol; a name
// the pod lacks leaves that port out), sorted by name and port.
func resolvePorts(svc *corev1.Service, p *corev1.Pod) []corev1.EndpointPort {
	var out []corev1.EndpointPort
	for _, sp := range svc.Spec.Ports {
		proto := sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		port, ok := endpointslice.TargetPort(sp, proto, p)
		if !ok {
			continue
		}
		out = append(out, corev1.EndpointPort{Name: sp.Name, Port: port, Protocol: proto, AppProtocol: sp.AppProtocol})
	}
	slices.SortFunc(out, func(a, b corev1.EndpointPort) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
	return out
}

func portsKey(ports []corev1.EndpointPort) string {
	parts := make([]string, 0, len(ports))
	for _, p := range ports {
		ap := ""
		if p.AppProtocol != nil {
			ap = *p.AppProtocol
		}
		parts = append(parts, fmt.Sprintf("%s/%s/%d/%s", p.Name, p.Protocol, p.Port, ap))
	}
	return strings.Join(parts, ",")
}
