package core

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestEndpointsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		ss   []corev1.EndpointSubset
		want []string
	}{
		{"valid", []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.1.0.5"}}, Ports: []corev1.EndpointPort{{Port: 80, Protocol: corev1.ProtocolTCP}}}}, nil},
		{"no addresses", []corev1.EndpointSubset{{Ports: []corev1.EndpointPort{{Port: 80, Protocol: corev1.ProtocolTCP}}}}, []string{"subsets[0]"}},
		{"bad and loopback IPs", []corev1.EndpointSubset{{
			Addresses:         []corev1.EndpointAddress{{IP: "10.1.0.300"}},
			NotReadyAddresses: []corev1.EndpointAddress{{IP: "127.0.0.1"}},
		}}, []string{"subsets[0].addresses[0].ip", "subsets[0].notReadyAddresses[0].ip"}},
		{"ports need names when several", []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.1.0.5"}},
			Ports:     []corev1.EndpointPort{{Port: 80, Protocol: corev1.ProtocolTCP}, {Name: "b", Port: 0, Protocol: "X"}},
		}}, []string{"subsets[0].ports[0].name", "subsets[0].ports[1].port", "subsets[0].ports[1].protocol"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := &corev1.Endpoints{Subsets: tc.ss}
			metaWantFields(t, validateEndpoints(ep), tc.want...)
		})
	}
}

func TestEndpointsDefaultAndTable(t *testing.T) {
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Subsets: []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{{IP: "10.1.0.5"}, {IP: "10.1.0.6"}}, Ports: []corev1.EndpointPort{{Port: 80}}},
			{Addresses: []corev1.EndpointAddress{{IP: "fd00::1"}, {IP: "10.1.0.7"}}, Ports: []corev1.EndpointPort{{Port: 8080}}},
		},
	}
	defaultEndpoints(ep)
	if p := ep.Subsets[1].Ports[0].Protocol; p != corev1.ProtocolTCP {
		t.Errorf("protocol = %q, want TCP", p)
	}
	want := []interface{}{"web", "10.1.0.5:80,10.1.0.6:80,[fd00::1]:8080 + 1 more...", "<unknown>"}
	if diff := cmp.Diff(want, Endpoints().Table.Row(ep)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if got := formatEndpointsCell(&corev1.Endpoints{}); got != "<none>" {
		t.Errorf("empty endpoints cell = %q", got)
	}
}
