package discovery

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func ptr[T any](v T) *T { return &v }

func errFields(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, string(e.Type)+" "+e.Field)
	}
	return out
}

func slice(t discoveryv1.AddressType, addrs ...string) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abc", Namespace: "ns", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: t,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: addrs}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr[int32](80)}},
	}
}

func TestDefault(t *testing.T) {
	eps := slice(discoveryv1.AddressTypeIPv4, "10.0.0.1")
	eps.Ports = append(eps.Ports, discoveryv1.EndpointPort{Port: ptr[int32](53), Protocol: ptr(corev1.ProtocolUDP)})
	defaultEndpointSlice(eps)
	want := []discoveryv1.EndpointPort{
		{Name: ptr("http"), Port: ptr[int32](80), Protocol: ptr(corev1.ProtocolTCP)},
		{Name: ptr(""), Port: ptr[int32](53), Protocol: ptr(corev1.ProtocolUDP)},
	}
	if diff := cmp.Diff(want, eps.Ports); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
		}
		return out
	}
	tests := []struct {
		name string
		eps  *discoveryv1.EndpointSlice
		want []string
	}{
		{"ipv4", slice(discoveryv1.AddressTypeIPv4, "10.0.0.1", "10.0.0.2"), nil},
		{"ipv6", slice(discoveryv1.AddressTypeIPv6, "fd00::1"), nil},
		{"fqdn", slice(discoveryv1.AddressTypeFQDN, "db.example.com"), nil},
		{"no type", slice("", "10.0.0.1"), []string{"FieldValueRequired addressType"}},
		{"bad type", slice("IP", "10.0.0.1"), []string{"FieldValueNotSupported addressType"}},
		{"no addresses", slice(discoveryv1.AddressTypeIPv4), []string{"FieldValueRequired endpoints[0].addresses"}},
		{"too many addresses", slice(discoveryv1.AddressTypeIPv4, many(101)...), []string{"FieldValueTooMany endpoints[0].addresses"}},
		{"wrong family", slice(discoveryv1.AddressTypeIPv4, "fd00::1"), []string{"FieldValueInvalid endpoints[0].addresses[0]"}},
		{"not an ip", slice(discoveryv1.AddressTypeIPv6, "nope"), []string{"FieldValueInvalid endpoints[0].addresses[0]"}},
		{"loopback", slice(discoveryv1.AddressTypeIPv4, "10.0.0.1", "127.0.0.1"), []string{"FieldValueInvalid endpoints[0].addresses[1]"}},
		{"link-local", slice(discoveryv1.AddressTypeIPv4, "169.254.1.1"), []string{"FieldValueInvalid endpoints[0].addresses[0]"}},
		{"bad fqdn", slice(discoveryv1.AddressTypeFQDN, "Not_A_Name"), []string{"FieldValueInvalid endpoints[0].addresses[0]"}},
	}
	tooMany := slice(discoveryv1.AddressTypeIPv4, "10.0.0.1")
	for len(tooMany.Endpoints) <= maxEndpoints {
		tooMany.Endpoints = append(tooMany.Endpoints, tooMany.Endpoints[0])
	}
	tests = append(tests, struct {
		name string
		eps  *discoveryv1.EndpointSlice
		want []string
	}{"too many endpoints", tooMany, []string{"FieldValueTooMany endpoints"}})

	ports := slice(discoveryv1.AddressTypeIPv4, "10.0.0.1")
	ports.Ports = []discoveryv1.EndpointPort{
		{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP)},
		{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP)},
		{Name: ptr("Bad_Name"), Protocol: ptr(corev1.Protocol("ICMP"))},
		{Name: ptr("x"), AppProtocol: ptr("not a protocol!")},
	}
	tests = append(tests, struct {
		name string
		eps  *discoveryv1.EndpointSlice
		want []string
	}{"ports", ports, []string{
		"FieldValueDuplicate ports[1].name",
		"FieldValueInvalid ports[2].name", "FieldValueNotSupported ports[2].protocol",
		"FieldValueInvalid ports[3].appProtocol",
	}})

	endpoint := slice(discoveryv1.AddressTypeIPv4, "10.0.0.1")
	endpoint.Endpoints[0].NodeName = ptr("Node_1")
	endpoint.Endpoints[0].Hostname = ptr("a.b")
	endpoint.Endpoints[0].Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "z"}, {Name: "z"}}}
	tests = append(tests, struct {
		name string
		eps  *discoveryv1.EndpointSlice
		want []string
	}{"endpoint fields", endpoint, []string{
		"FieldValueInvalid endpoints[0].nodeName", "FieldValueInvalid endpoints[0].hostname",
		"FieldValueDuplicate endpoints[0].hints.forZones[1].name",
	}})

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defaultEndpointSlice(tt.eps)
			if diff := cmp.Diff(tt.want, errFields(validateEndpointSlice(tt.eps, nil))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateUpdate(t *testing.T) {
	old := slice(discoveryv1.AddressTypeIPv4, "10.0.0.1")
	defaultEndpointSlice(old)
	changed := old.DeepCopy()
	changed.AddressType = discoveryv1.AddressTypeIPv6
	changed.Endpoints[0].Addresses = []string{"fd00::1"}
	if diff := cmp.Diff([]string{"FieldValueInvalid addressType"}, errFields(validateEndpointSlice(changed, old))); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	// A non-canonical address stored before strict parsing stays valid.
	legacy := slice(discoveryv1.AddressTypeIPv4, "010.000.000.001")
	defaultEndpointSlice(legacy)
	if errs := validateEndpointSlice(legacy, nil); len(errs) == 0 {
		t.Errorf("leading zeros accepted on create")
	}
	if errs := validateEndpointSlice(legacy.DeepCopy(), legacy); len(errs) != 0 {
		t.Errorf("stored legacy address rejected on update: %v", errs)
	}
}

func TestGeneration(t *testing.T) {
	r := Resources()[0]
	eps := slice(discoveryv1.AddressTypeIPv4, "10.0.0.1")
	r.Strategy.PrepareForCreate(context.Background(), eps)
	if eps.Generation != 1 {
		t.Fatalf("generation on create = %d", eps.Generation)
	}
	tests := []struct {
		name   string
		mutate func(*discoveryv1.EndpointSlice)
		want   int64
	}{
		{"nothing", func(*discoveryv1.EndpointSlice) {}, 1},
		{"annotation", func(e *discoveryv1.EndpointSlice) { e.Annotations = map[string]string{"a": "b"} }, 1},
		{"label", func(e *discoveryv1.EndpointSlice) { e.Labels["x"] = "y" }, 2},
		{"endpoints", func(e *discoveryv1.EndpointSlice) { e.Endpoints[0].Addresses[0] = "10.0.0.9" }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := eps.DeepCopy()
			tt.mutate(n)
			r.Strategy.PrepareForUpdate(context.Background(), n, eps)
			if n.Generation != tt.want {
				t.Errorf("generation = %d, want %d", n.Generation, tt.want)
			}
		})
	}
}

func TestTable(t *testing.T) {
	r := Resources()[0]
	big := slice(discoveryv1.AddressTypeIPv4, "10.0.0.1", "10.0.0.2", "10.0.0.3")
	big.Endpoints = append(big.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.0.0.4", "10.0.0.5"}})
	big.Ports = append(big.Ports, discoveryv1.EndpointPort{Name: ptr("metrics")}, discoveryv1.EndpointPort{})
	empty := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "e"}, AddressType: discoveryv1.AddressTypeIPv6}
	tests := []struct {
		name string
		eps  *discoveryv1.EndpointSlice
		want []interface{}
	}{
		{"many", big, []interface{}{"web-abc", "IPv4", "80,metrics,*", "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...", "<unknown>"}},
		{"empty", empty, []interface{}{"e", "IPv6", "<unset>", "<unset>", "<unknown>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, r.Table.Row(tt.eps)); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}
