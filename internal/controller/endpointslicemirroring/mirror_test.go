package endpointslicemirroring

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDesiredSlices(t *testing.T) {
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns", UID: "u1",
			Labels:      map[string]string{"app": "db", LabelSkipMirror: "false"},
			Annotations: map[string]string{"note": "x", corev1.EndpointsLastChangeTriggerTime: "t"}},
		Subsets: []corev1.EndpointSubset{
			{
				Ports:             []corev1.EndpointPort{{Name: "sql", Port: 5432}},
				Addresses:         []corev1.EndpointAddress{{IP: "10.1.2.3", Hostname: "db-0", NodeName: ptr("n1")}, {IP: "fd00::1"}, {IP: "not-an-ip"}},
				NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.1.2.4"}},
			},
			{Ports: []corev1.EndpointPort{{Name: "admin", Port: 9000, Protocol: corev1.ProtocolUDP}}, Addresses: []corev1.EndpointAddress{{IP: "10.9.9.9"}}},
		},
	}
	got, truncated := desiredSlices(ep)
	if truncated || len(got) != 3 {
		t.Fatalf("%d slices (truncated %v), want 3: IPv4 and IPv6 of the first subset, IPv4 of the second", len(got), truncated)
	}
	v4 := got[0]
	wantEndpoints := []discoveryv1.Endpoint{
		{Addresses: []string{"10.1.2.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}, Hostname: ptr("db-0"), NodeName: ptr("n1")},
		{Addresses: []string{"10.1.2.4"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false)}},
	}
	if diff := cmp.Diff(wantEndpoints, v4.Endpoints); diff != "" || v4.AddressType != discoveryv1.AddressTypeIPv4 {
		t.Errorf("first slice %s endpoints (-want +got):\n%s", v4.AddressType, diff)
	}
	if *v4.Ports[0].Protocol != corev1.ProtocolTCP || *v4.Ports[0].Name != "sql" {
		t.Errorf("ports %+v: want sql/TCP", v4.Ports)
	}
	wantLabels := map[string]string{"app": "db", discoveryv1.LabelServiceName: "db", discoveryv1.LabelManagedBy: ManagedBy}
	if diff := cmp.Diff(wantLabels, v4.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"note": "x"}, v4.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if len(v4.OwnerReferences) != 1 || v4.OwnerReferences[0].UID != "u1" || v4.OwnerReferences[0].Kind != "Endpoints" {
		t.Errorf("owner %+v, want the Endpoints", v4.OwnerReferences)
	}
	if got[1].AddressType != discoveryv1.AddressTypeIPv6 || got[1].Endpoints[0].Addresses[0] != "fd00::1" {
		t.Errorf("second slice %+v, want the IPv6 address", got[1])
	}
	names := map[string]bool{}
	for _, s := range got {
		names[s.Name] = true
	}
	again, _ := desiredSlices(ep)
	if len(names) != 3 || again[2].Name != got[2].Name {
		t.Errorf("names %v: want three distinct names, stable across calls", names)
	}

	// A subset is mirrored up to MaxEndpointsPerSubset addresses.
	big := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "big"}, Subsets: []corev1.EndpointSubset{{Ports: []corev1.EndpointPort{{Port: 80}}}}}
	for i := 0; i < MaxEndpointsPerSubset+5; i++ {
		big.Subsets[0].Addresses = append(big.Subsets[0].Addresses, corev1.EndpointAddress{IP: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)})
	}
	got, truncated = desiredSlices(big)
	if !truncated || len(got) != 1 || len(got[0].Endpoints) != MaxEndpointsPerSubset {
		t.Errorf("%d addresses: truncated %v, %d endpoints, want %d", MaxEndpointsPerSubset+5, truncated, len(got[0].Endpoints), MaxEndpointsPerSubset)
	}
}

func TestMirrored(t *testing.T) {
	ep := &corev1.Endpoints{}
	plain := &corev1.Service{}
	selected := &corev1.Service{Spec: corev1.ServiceSpec{Selector: map[string]string{"a": "b"}}}
	skip := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelSkipMirror: "true"}}}
	for _, tc := range []struct {
		svc  *corev1.Service
		ep   *corev1.Endpoints
		want bool
	}{{plain, ep, true}, {selected, ep, false}, {plain, skip, false}, {nil, ep, false}, {plain, nil, false}} {
		if got := mirrored(tc.svc, tc.ep); got != tc.want {
			t.Errorf("mirrored(%+v, %+v) = %v, want %v", tc.svc, tc.ep, got, tc.want)
		}
	}
}
