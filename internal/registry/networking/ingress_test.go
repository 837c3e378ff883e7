package networking

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// errFields renders errors as "Type field" for comparison.
func errFields(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, string(e.Type)+" "+e.Field)
	}
	return out
}

func serviceBackend(name string, port int32) networkingv1.IngressBackend {
	return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name, Port: networkingv1.ServiceBackendPort{Number: port}}}
}

// validIngress is the conformance test's ingress.
func validIngress() *networkingv1.Ingress {
	b := serviceBackend("default-backend", 8080)
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "ing", Namespace: "ns"},
		Spec: networkingv1.IngressSpec{
			DefaultBackend: &b,
			Rules: []networkingv1.IngressRule{{
				Host: "foo.bar.com",
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: ptr.To(networkingv1.PathTypeImplementationSpecific), Backend: serviceBackend("test-backend", 8080),
				}}}},
			}},
		},
	}
}

func TestValidateIngress(t *testing.T) {
	path := func(ing *networkingv1.Ingress) *networkingv1.HTTPIngressPath {
		return &ing.Spec.Rules[0].HTTP.Paths[0]
	}
	tests := []struct {
		name   string
		mutate func(*networkingv1.Ingress)
		want   []string
	}{
		{"valid", func(*networkingv1.Ingress) {}, nil},
		{"nothing to route", func(i *networkingv1.Ingress) { i.Spec = networkingv1.IngressSpec{} }, []string{"FieldValueInvalid spec"}},
		{"ip host", func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "10.0.0.1" }, []string{"FieldValueInvalid spec.rules[0].host"}},
		{"wildcard host", func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "*.bar.com" }, nil},
		{"bad wildcard", func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "foo.*.com" }, []string{"FieldValueInvalid spec.rules[0].host"}},
		{"no pathType", func(i *networkingv1.Ingress) { path(i).PathType = nil }, []string{"FieldValueRequired spec.rules[0].http.paths[0].pathType"}},
		{"bad pathType", func(i *networkingv1.Ingress) { path(i).PathType = ptr.To(networkingv1.PathType("Regex")) },
			[]string{"FieldValueNotSupported spec.rules[0].http.paths[0].pathType"}},
		{"relative prefix", func(i *networkingv1.Ingress) {
			path(i).PathType, path(i).Path = ptr.To(networkingv1.PathTypePrefix), "foo"
		}, []string{"FieldValueInvalid spec.rules[0].http.paths[0].path"}},
		{"prefix with //", func(i *networkingv1.Ingress) {
			path(i).PathType, path(i).Path = ptr.To(networkingv1.PathTypePrefix), "/a//b"
		}, []string{"FieldValueInvalid spec.rules[0].http.paths[0].path"}},
		{"exact ending /..", func(i *networkingv1.Ingress) {
			path(i).PathType, path(i).Path = ptr.To(networkingv1.PathTypeExact), "/a/.."
		}, []string{"FieldValueInvalid spec.rules[0].http.paths[0].path"}},
		{"implementation specific empty path", func(i *networkingv1.Ingress) { path(i).Path = "" }, nil},
		{"no paths", func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths = nil }, []string{"FieldValueRequired spec.rules[0].http.paths"}},
		{"no backend", func(i *networkingv1.Ingress) { i.Spec.DefaultBackend = &networkingv1.IngressBackend{} }, []string{"FieldValueInvalid spec.defaultBackend"}},
		{"both backends", func(i *networkingv1.Ingress) {
			i.Spec.DefaultBackend.Resource = &typedRef
		}, []string{"FieldValueInvalid spec.defaultBackend"}},
		{"resource backend", func(i *networkingv1.Ingress) {
			i.Spec.DefaultBackend = &networkingv1.IngressBackend{Resource: &typedRef}
		}, nil},
		{"service name not a label", func(i *networkingv1.Ingress) { i.Spec.DefaultBackend.Service.Name = "a.b" },
			[]string{"FieldValueInvalid spec.defaultBackend.service.name"}},
		{"service name starting with a digit", func(i *networkingv1.Ingress) { i.Spec.DefaultBackend.Service.Name = "1web" }, nil},
		{"no port", func(i *networkingv1.Ingress) { i.Spec.DefaultBackend.Service.Port.Number = 0 }, []string{"FieldValueRequired spec.defaultBackend"}},
		{"port name and number", func(i *networkingv1.Ingress) { i.Spec.DefaultBackend.Service.Port.Name = "http" },
			[]string{"FieldValueInvalid spec.defaultBackend"}},
		{"bad port number", func(i *networkingv1.Ingress) { i.Spec.DefaultBackend.Service.Port.Number = 70000 },
			[]string{"FieldValueInvalid spec.defaultBackend.service.port.number"}},
		{"tls", func(i *networkingv1.Ingress) {
			i.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"*.bar.com", "bad_host"}, SecretName: "Bad"}}
		}, []string{"FieldValueInvalid spec.tls[0].hosts[1]", "FieldValueInvalid spec.tls[0].secretName"}},
		{"bad class name", func(i *networkingv1.Ingress) { i.Spec.IngressClassName = ptr.To("Nginx") },
			[]string{"FieldValueInvalid spec.ingressClassName"}},
		{"annotation disagrees with class", func(i *networkingv1.Ingress) {
			i.Annotations = map[string]string{ingressClassAnnotation: "a"}
			i.Spec.IngressClassName = ptr.To("b")
		}, []string{"FieldValueInvalid annotations.kubernetes.io/ingress.class"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ing := validIngress()
			tt.mutate(ing)
			if diff := cmp.Diff(tt.want, errFields(validateIngressCreate(ing))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

var typedRef = corev1.TypedLocalObjectReference{APIGroup: ptr.To("example.com"), Kind: "Bucket", Name: "static"}

// An update keeps what older rules let in: an invalid TLS secret name
// already stored stays writable.
func TestValidateIngressUpdate(t *testing.T) {
	old := validIngress()
	old.Spec.TLS = []networkingv1.IngressTLS{{SecretName: "Bad"}}
	ing := old.DeepCopy()
	ing.Labels = map[string]string{"a": "b"}
	if errs := validateIngressUpdate(ing, old); len(errs) != 0 {
		t.Errorf("update of a stored invalid secret name: %v", errs)
	}
	if errs := validateIngressCreate(ing); len(errs) == 0 {
		t.Error("create with an invalid secret name accepted")
	}
}

func TestValidateIngressStatus(t *testing.T) {
	old := validIngress()
	for _, tt := range []struct {
		name string
		lb   []networkingv1.IngressLoadBalancerIngress
		want []string
	}{
		{"ip", []networkingv1.IngressLoadBalancerIngress{{IP: "169.1.1.1"}}, nil},
		{"hostname", []networkingv1.IngressLoadBalancerIngress{{Hostname: "lb.example.com"}}, nil},
		{"bad ip", []networkingv1.IngressLoadBalancerIngress{{IP: "1.2.3"}}, []string{"FieldValueInvalid status.loadBalancer.ingress[0].ip"}},
		{"ip as hostname", []networkingv1.IngressLoadBalancerIngress{{Hostname: "1.2.3.4"}}, []string{"FieldValueInvalid status.loadBalancer.ingress[0].hostname"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ing := old.DeepCopy()
			ing.Status.LoadBalancer.Ingress = tt.lb
			if diff := cmp.Diff(tt.want, errFields(validateIngressStatusUpdate(ing, old))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIngressWarnings(t *testing.T) {
	ing := validIngress()
	ing.Annotations = map[string]string{ingressClassAnnotation: "nginx"}
	if w := ingressWarnings(ing); len(w) != 1 || !strings.Contains(w[0], "is deprecated, please use 'spec.ingressClassName' instead") {
		t.Errorf("warnings %q", w)
	}
	ing.Spec.IngressClassName = ptr.To("nginx")
	if w := ingressWarnings(ing); len(w) != 0 {
		t.Errorf("warnings %q with ingressClassName set", w)
	}
}

func TestIngressTable(t *testing.T) {
	r := ingresses()
	if !r.Namespaced || !r.Status || cmp.Diff([]string{"ing"}, r.ShortNames) != "" {
		t.Fatalf("descriptor: %+v", r)
	}
	var names []string
	for _, c := range r.Table.Columns {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff([]string{"Name", "Class", "Hosts", "Address", "Ports", "Age"}, names); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	ing := validIngress()
	ing.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "169.1.1.2"}, {IP: "169.1.1.1"}, {Hostname: "x"}}
	want := []interface{}{"ing", "<none>", "foo.bar.com", "169.1.1.1,169...", "80", "<unknown>"}
	if diff := cmp.Diff(want, r.Table.Row(ing)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	ing.Spec.IngressClassName = ptr.To("nginx")
	ing.Spec.TLS = []networkingv1.IngressTLS{{}}
	ing.Status.LoadBalancer.Ingress = nil
	for _, h := range []string{"", "b", "c", "d"} {
		ing.Spec.Rules = append(ing.Spec.Rules, networkingv1.IngressRule{Host: h})
	}
	want = []interface{}{"ing", "nginx", "foo.bar.com,b,c + 2 more...", "", "80, 443", "<unknown>"}
	if diff := cmp.Diff(want, r.Table.Row(ing)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
