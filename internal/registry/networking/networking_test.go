package networking

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestResources(t *testing.T) {
	want := map[string]bool{"ingresses": true, "ingressclasses": false, "servicecidrs": false, "ipaddresses": false}
	for _, r := range Resources() {
		namespaced, ok := want[r.Name]
		if !ok || r.Namespaced != namespaced || r.GroupVersion != networkingv1.SchemeGroupVersion {
			t.Errorf("%s: namespaced %v, group %v", r.Name, r.Namespaced, r.GroupVersion)
		}
		delete(want, r.Name)
	}
	if len(want) != 0 {
		t.Errorf("missing %v", want)
	}
}

func ingressClass(controller string, params *networkingv1.IngressClassParametersReference) *networkingv1.IngressClass {
	return &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: networkingv1.IngressClassSpec{Controller: controller, Parameters: params}}
}

func TestIngressClass(t *testing.T) {
	params := func(scope, ns *string) *networkingv1.IngressClassParametersReference {
		return &networkingv1.IngressClassParametersReference{APIGroup: ptr.To("example.com"), Kind: "fookind", Name: "fooname", Scope: scope, Namespace: ns}
	}
	tests := []struct {
		name string
		ic   *networkingv1.IngressClass
		want []string
	}{
		{"valid", ingressClass("example.com/controller", nil), nil},
		{"controller not domain-prefixed", ingressClass("controller", nil), []string{"FieldValueInvalid spec.controller"}},
		{"scope defaults to Cluster", ingressClass("example.com/c", params(nil, nil)), nil},
		{"namespace scope", ingressClass("example.com/c", params(ptr.To("Namespace"), ptr.To("foo-ns"))), nil},
		{"namespace scope without namespace", ingressClass("example.com/c", params(ptr.To("Namespace"), nil)),
			[]string{"FieldValueRequired spec.parameters.namespace"}},
		{"cluster scope with namespace", ingressClass("example.com/c", params(ptr.To("Cluster"), ptr.To("foo-ns"))),
			[]string{"FieldValueForbidden spec.parameters.namespace"}},
		{"bad scope", ingressClass("example.com/c", params(ptr.To("Galaxy"), nil)), []string{"FieldValueNotSupported spec.parameters.scope"}},
		{"no kind and name", ingressClass("example.com/c", &networkingv1.IngressClassParametersReference{}),
			[]string{"FieldValueRequired spec.parameters.kind", "FieldValueRequired spec.parameters.name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defaultIngressClass(tt.ic)
			if diff := cmp.Diff(tt.want, errFields(validateIngressClass(tt.ic))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
	ic := ingressClass("example.com/c", params(nil, nil))
	defaultIngressClass(ic)
	if s := ic.Spec.Parameters.Scope; s == nil || *s != "Cluster" {
		t.Errorf("defaulted scope %v", s)
	}

	old := ingressClass("example.com/a", nil)
	if diff := cmp.Diff([]string{"FieldValueInvalid spec.controller"}, errFields(validateIngressClassUpdate(ingressClass("example.com/b", nil), old))); diff != "" {
		t.Errorf("controller change (-want +got):\n%s", diff)
	}

	ic.Annotations = map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}
	want := []interface{}{"c (default)", "example.com/c", "fookind.example.com/fooname", "<unknown>"}
	if diff := cmp.Diff(want, ingressClassTable.Row(ic)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func serviceCIDR(cidrs ...string) *networkingv1.ServiceCIDR {
	return &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Spec: networkingv1.ServiceCIDRSpec{CIDRs: cidrs}}
}

func TestServiceCIDR(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cidrs []string
		want  []string
	}{
		{"v4", []string{"10.43.0.0/16"}, nil},
		{"dual", []string{"10.43.0.0/16", "fd00:43::/112"}, nil},
		{"none", nil, []string{"FieldValueRequired spec.cidrs"}},
		{"three", []string{"10.0.0.0/8", "fd00::/64", "11.0.0.0/8"}, []string{"FieldValueInvalid spec.cidrs"}},
		{"same family", []string{"10.0.0.0/8", "11.0.0.0/8"}, []string{"FieldValueInvalid spec.cidrs"}},
		{"not a cidr", []string{"10.0.0.1"}, []string{"FieldValueInvalid spec.cidrs[0]"}},
		{"host bits", []string{"10.0.0.1/8"}, []string{"FieldValueInvalid spec.cidrs[0]"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errFields(validateServiceCIDR(serviceCIDR(tt.cidrs...)))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
	for _, tt := range []struct {
		name     string
		old, obj *networkingv1.ServiceCIDR
		want     []string
	}{
		{"same", serviceCIDR("10.0.0.0/8"), serviceCIDR("10.0.0.0/8"), nil},
		{"changed", serviceCIDR("10.0.0.0/8"), serviceCIDR("11.0.0.0/8"), []string{"FieldValueInvalid spec.cidrs[0]"}},
		{"to dual stack", serviceCIDR("10.0.0.0/8"), serviceCIDR("10.0.0.0/8", "fd00::/64"), nil},
		{"to dual stack, first changed", serviceCIDR("10.0.0.0/8"), serviceCIDR("11.0.0.0/8", "fd00::/64"), []string{"FieldValueInvalid spec.cidrs[0]"}},
		{"removed", serviceCIDR("10.0.0.0/8", "fd00::/64"), serviceCIDR("10.0.0.0/8"), []string{"FieldValueInvalid spec.cidrs"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errFields(validateServiceCIDRUpdate(tt.obj, tt.old))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// The default ServiceCIDR holds the service ranges and is Ready; a Ready
// condition already there is not touched.
func TestDefaultServiceCIDR(t *testing.T) {
	c := DefaultServiceCIDR([]netip.Prefix{netip.MustParsePrefix("10.43.0.0/16")})
	if c.Name != "kubernetes" || cmp.Diff([]string{"10.43.0.0/16"}, c.Spec.CIDRs) != "" {
		t.Fatalf("default ServiceCIDR %+v", c)
	}
	if errs := validateServiceCIDR(c); len(errs) != 0 {
		t.Fatalf("invalid: %v", errs)
	}
	if !apimeta.IsStatusConditionTrue(c.Status.Conditions, networkingv1.ServiceCIDRConditionReady) {
		t.Errorf("conditions %+v", c.Status.Conditions)
	}
	if SetServiceCIDRReady(c) {
		t.Error("Ready set again")
	}
	apimeta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: networkingv1.ServiceCIDRConditionReady, Status: metav1.ConditionFalse, Reason: "Broken"})
	if SetServiceCIDRReady(c) || apimeta.IsStatusConditionTrue(c.Status.Conditions, networkingv1.ServiceCIDRConditionReady) {
		t.Error("Ready=False overwritten")
	}
	want := []interface{}{"kubernetes", "10.43.0.0/16", "<unknown>"}
	if diff := cmp.Diff(want, serviceCIDRTable.Row(c)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestIPAddress(t *testing.T) {
	ref := &networkingv1.ParentReference{Group: "mygroup", Resource: "myresources", Namespace: "foo", Name: "bar"}
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"255.255.255.255", true},
		{"fe80::42:1dff:fe84:f9e2", true},
		{"10.0.0.1", true},
		{"fe80:0::1", false}, // not canonical
		{"010.0.0.1", false},
		{"web", false},
	} {
		if got := len(ipAddressName(tt.name, false)) == 0; got != tt.ok {
			t.Errorf("name %q valid = %v, want %v", tt.name, got, tt.ok)
		}
	}
	ip := func(ref *networkingv1.ParentReference) *networkingv1.IPAddress {
		return &networkingv1.IPAddress{ObjectMeta: metav1.ObjectMeta{Name: "10.0.0.1"}, Spec: networkingv1.IPAddressSpec{ParentRef: ref}}
	}
	for _, tt := range []struct {
		name string
		ref  *networkingv1.ParentReference
		want []string
	}{
		{"valid", ref, nil},
		{"core group", &networkingv1.ParentReference{Resource: "services", Namespace: "default", Name: "kubernetes"}, nil},
		{"no parent", nil, []string{"FieldValueRequired spec.parentRef"}},
		{"no resource and name", &networkingv1.ParentReference{}, []string{"FieldValueRequired spec.parentRef.resource", "FieldValueRequired spec.parentRef.name"}},
		{"bad name", &networkingv1.ParentReference{Resource: "services", Name: "a/b"}, []string{"FieldValueInvalid spec.parentRef.name"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errFields(validateIPAddress(ip(tt.ref)))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
	other := &networkingv1.ParentReference{Resource: "services", Namespace: "default", Name: "web"}
	if diff := cmp.Diff([]string{"FieldValueInvalid spec.parentRef"}, errFields(validateIPAddressUpdate(ip(other), ip(ref)))); diff != "" {
		t.Errorf("parent change (-want +got):\n%s", diff)
	}
	want := []interface{}{"10.0.0.1", "myresources.mygroup/foo/bar"}
	if diff := cmp.Diff(want, ipAddressTable.Row(ip(ref))); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if got := ipAddressTable.Row(ip(&networkingv1.ParentReference{Resource: "services", Name: "x"}))[1]; got != "services/x" {
		t.Errorf("core parent %q", got)
	}
}
