package endpointslicemirroring

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ManagedBy is the endpointslice.kubernetes.io/managed-by label of the
// slices this controller writes (upstream's value).
const ManagedBy = "endpointslicemirroring-controller.k8s.io"

// LabelSkipMirror on an Endpoints says it is the endpoints controller's,
// mirrored by the EndpointSlice controller already.
const LabelSkipMirror = "endpointslice.kubernetes.io/skip-mirror"

// MaxEndpointsPerSubset is how many addresses of one subset are mirrored,
// as upstream's default --mirroring-max-endpoints-per-subset.
const MaxEndpointsPerSubset = 1000

var endpointsGVK = corev1.SchemeGroupVersion.WithKind("Endpoints")

// mirrored reports whether ep of svc is mirrored: a Service without a
// selector whose Endpoints the endpoints controller did not write.
func mirrored(svc *corev1.Service, ep *corev1.Endpoints) bool {
	return svc != nil && ep != nil && len(svc.Spec.Selector) == 0 && ep.Labels[LabelSkipMirror] != "true" &&
		ep.DeletionTimestamp == nil && svc.DeletionTimestamp == nil
}

// desiredSlices returns the slices that mirror ep: one per subset and
// address family that has a valid address, named after the Endpoints and
// a hash of what distinguishes it (so that a lagging cache cannot make a
// second copy: its create fails as already existing), with the
// Endpoints' labels and annotations, owned by the Endpoints. Addresses
// past MaxEndpointsPerSubset in a subset are left out; truncated says
// whether any were.
func desiredSlices(ep *corev1.Endpoints) (out []*discoveryv1.EndpointSlice, truncated bool) {
	type key struct {
		family discoveryv1.AddressType
		ports  string
	}
	byKey := map[key]*discoveryv1.EndpointSlice{}
	var order []key
	for _, ss := range ep.Subsets {
		ports := make([]discoveryv1.EndpointPort, 0, len(ss.Ports))
		for _, p := range ss.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			ports = append(ports, discoveryv1.EndpointPort{Name: ptr(p.Name), Port: ptr(p.Port), Protocol: ptr(proto), AppProtocol: p.AppProtocol})
		}
		count := 0
		add := func(a corev1.EndpointAddress, ready bool) {
			if count >= MaxEndpointsPerSubset {
				truncated = true
				return
			}
			ip, err := netip.ParseAddr(a.IP)
			if err != nil {
				return // not an address a slice can hold
			}
			count++
			family := discoveryv1.AddressTypeIPv4
			if ip.Is6() && !ip.Is4In6() {
				family = discoveryv1.AddressTypeIPv6
			}
			k := key{family, portsKey(ports)}
			s, ok := byKey[k]
			if !ok {
				s = &discoveryv1.EndpointSlice{AddressType: family, Ports: ports}
				byKey[k] = s
				order = append(order, k)
			}
			e := discoveryv1.Endpoint{
				Addresses:  []string{ip.String()},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr(ready)},
				NodeName:   a.NodeName,
				TargetRef:  a.TargetRef,
			}
			if a.Hostname != "" {
				e.Hostname = ptr(a.Hostname)
			}
			s.Endpoints = append(s.Endpoints, e)
		}
		for _, a := range ss.Addresses {
			add(a, true)
		}
		for _, a := range ss.NotReadyAddresses {
			add(a, false)
		}
	}
	labels := map[string]string{}
	maps.Copy(labels, ep.Labels)
	delete(labels, LabelSkipMirror)
	labels[discoveryv1.LabelServiceName] = ep.Name
	labels[discoveryv1.LabelManagedBy] = ManagedBy
	var annotations map[string]string
	for k, v := range ep.Annotations {
		if k == corev1.EndpointsLastChangeTriggerTime || k == corev1.LastAppliedConfigAnnotation {
			continue
		}
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[k] = v
	}
	owner := metav1.NewControllerRef(ep, endpointsGVK)
	for _, k := range order {
		s := byKey[k]
		s.Name = sliceName(ep.Name, string(k.family)+"/"+k.ports)
		s.Namespace = ep.Namespace
		s.Labels = maps.Clone(labels)
		s.Annotations = maps.Clone(annotations)
		s.OwnerReferences = []metav1.OwnerReference{*owner}
		out = append(out, s)
	}
	return out, truncated
}

// portsKey is a subset's ports in a canonical order.
func portsKey(ports []discoveryv1.EndpointPort) string {
	parts := make([]string, 0, len(ports))
	for _, p := range ports {
		app := ""
		if p.AppProtocol != nil {
			app = *p.AppProtocol
		}
		parts = append(parts, *p.Name+":"+strconv.Itoa(int(*p.Port))+"/"+string(*p.Protocol)+"/"+app)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// sliceName is "<endpoints>-<hash of the endpoints' name and key>",
// within the 63 characters a generated name keeps.
func sliceName(endpoints, key string) string {
	sum := sha256.Sum256([]byte(endpoints + "\x00" + key))
	h := hex.EncodeToString(sum[:])[:10]
	if len(endpoints) > 52 {
		endpoints = endpoints[:52]
	}
	return strings.TrimRight(endpoints, "-.") + "-" + h
}

func ptr[T any](v T) *T { return &v }
