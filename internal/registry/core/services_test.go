package core

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// svcCreate runs a service through the create path as the server does,
// with clusterIP standing in for the allocator's result.
func svcCreate(svc *corev1.Service, allocated string) *corev1.Service {
	r := Services()
	r.Strategy.PrepareForCreate(context.Background(), svc)
	r.Strategy.Default(svc)
	if allocated != "" && svc.Spec.ClusterIP == "" {
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = allocated, []string{allocated}
	}
	return svc
}

func svcBasic(mut func(*corev1.Service)) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80}},
		},
	}
	if mut != nil {
		mut(svc)
	}
	return svc
}

func TestServiceDefaults(t *testing.T) {
	cluster := corev1.ServiceInternalTrafficPolicyCluster
	single := corev1.IPFamilyPolicySingleStack
	for _, tc := range []struct {
		name string
		in   *corev1.Service
		want corev1.ServiceSpec
	}{
		{
			name: "clusterIP",
			in:   svcBasic(nil),
			want: corev1.ServiceSpec{
				Type:                  corev1.ServiceTypeClusterIP,
				Selector:              map[string]string{"app": "web"},
				Ports:                 []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)}},
				SessionAffinity:       corev1.ServiceAffinityNone,
				InternalTrafficPolicy: &cluster,
				IPFamilyPolicy:        &single,
				IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol},
			},
		},
		{
			name: "loadBalancer with named target port",
			in: svcBasic(func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeLoadBalancer
				s.Spec.Ports[0].TargetPort = intstr.FromString("http")
				s.Spec.Ports[0].Protocol = corev1.ProtocolUDP
			}),
			want: corev1.ServiceSpec{
				Type:                          corev1.ServiceTypeLoadBalancer,
				Selector:                      map[string]string{"app": "web"},
				Ports:                         []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("http")}},
				SessionAffinity:               corev1.ServiceAffinityNone,
				ExternalTrafficPolicy:         corev1.ServiceExternalTrafficPolicyCluster,
				InternalTrafficPolicy:         &cluster,
				AllocateLoadBalancerNodePorts: ptr.To(true),
				IPFamilyPolicy:                &single,
				IPFamilies:                    []corev1.IPFamily{corev1.IPv4Protocol},
			},
		},
		{
			name: "clientIP affinity gets a timeout; IPv6 clusterIP gives IPv6 family",
			in: svcBasic(func(s *corev1.Service) {
				s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
				s.Spec.ClusterIP = "fd00::10"
			}),
			want: corev1.ServiceSpec{
				Type:                  corev1.ServiceTypeClusterIP,
				Selector:              map[string]string{"app": "web"},
				ClusterIP:             "fd00::10",
				ClusterIPs:            []string{"fd00::10"},
				Ports:                 []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)}},
				SessionAffinity:       corev1.ServiceAffinityClientIP,
				SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](10800)}},
				InternalTrafficPolicy: &cluster,
				IPFamilyPolicy:        &single,
				IPFamilies:            []corev1.IPFamily{corev1.IPv6Protocol},
			},
		},
		{
			name: "headless without selector is dual-stack",
			in: svcBasic(func(s *corev1.Service) {
				s.Spec.ClusterIP = corev1.ClusterIPNone
				s.Spec.Selector = nil
				s.Spec.Ports = nil
			}),
			want: corev1.ServiceSpec{
				Type:                  corev1.ServiceTypeClusterIP,
				ClusterIP:             "None",
				ClusterIPs:            []string{"None"},
				SessionAffinity:       corev1.ServiceAffinityNone,
				InternalTrafficPolicy: &cluster,
				IPFamilyPolicy:        ptr.To(corev1.IPFamilyPolicyRequireDualStack),
				IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
			},
		},
		{
			name: "externalName has no IP fields",
			in: svcBasic(func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeExternalName
				s.Spec.ExternalName = "example.com"
				s.Spec.Ports = nil
				s.Spec.Selector = nil
				s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
			}),
			want: corev1.ServiceSpec{
				Type:            corev1.ServiceTypeExternalName,
				ExternalName:    "example.com",
				SessionAffinity: corev1.ServiceAffinityNone,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := svcCreate(tc.in, "")
			if diff := cmp.Diff(tc.want, got.Spec); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
			if errs := validateService(got); len(errs) != 0 {
				t.Errorf("defaulted service does not validate: %v", errs)
			}
		})
	}
}

func TestServiceValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(*corev1.Service)
		want []string
	}{
		{"valid", func(*corev1.Service) {}, nil},
		{"ports required", func(s *corev1.Service) { s.Spec.Ports = nil }, []string{"spec.ports"}},
		{"headless needs no ports", func(s *corev1.Service) {
			s.Spec.Ports, s.Spec.ClusterIP, s.Spec.ClusterIPs = nil, "None", []string{"None"}
		}, nil},
		{"bad port number", func(s *corev1.Service) { s.Spec.Ports[0].Port = 70000 }, []string{"spec.ports[0].port"}},
		{"names required with two ports", func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "b", Port: 81, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(81)})
		}, []string{"spec.ports[0].name"}},
		{"duplicate names and ports", func(s *corev1.Service) {
			s.Spec.Ports[0].Name = "a"
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "a", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)})
		}, []string{"spec.ports[1].name", "spec.ports[1]"}},
		{"bad protocol", func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "ICMP" }, []string{"spec.ports[0].protocol"}},
		{"bad selector", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "bad value"} }, []string{"spec.selector"}},
		{"bad type", func(s *corev1.Service) { s.Spec.Type = "Magic" }, []string{"spec.type"}},
		{"nodePort on ClusterIP", func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 }, []string{"spec.ports[0].nodePort"}},
		{"bad clusterIP", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.0.0.300", []string{"10.0.0.300"} }, []string{"spec.clusterIPs[0]"}},
		{"clusterIPs must match clusterIP", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.0.0.1", []string{"10.0.0.2"} }, []string{"spec.clusterIPs"}},
		{"headless NodePort", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ClusterIP, s.Spec.ClusterIPs = corev1.ServiceTypeNodePort, "None", []string{"None"}
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		}, []string{"spec.clusterIPs[0]"}},
		{"externalName needs a DNS name", func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "not a name", SessionAffinity: corev1.ServiceAffinityNone}
		}, []string{"spec.externalName"}},
		{"externalName with clusterIP", func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com.", ClusterIP: "10.0.0.1", SessionAffinity: corev1.ServiceAffinityNone}
		}, []string{"spec.clusterIP"}},
		{"externalTrafficPolicy on internal service", func(s *corev1.Service) {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}, []string{"spec.externalTrafficPolicy"}},
		{"loopback external IP", func(s *corev1.Service) {
			s.Spec.ExternalIPs = []string{"127.0.0.1"}
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		}, []string{"spec.externalIPs[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := svcCreate(svcBasic(nil), "10.96.0.10")
			tc.mut(svc)
			metaWantFields(t, validateService(svc), tc.want...)
		})
	}
}

func TestServiceUpdate(t *testing.T) {
	ctx := context.Background()
	r := Services()
	update := func(old *corev1.Service, mut func(*corev1.Service)) *corev1.Service {
		svc := old.DeepCopy()
		mut(svc)
		r.Strategy.PrepareForUpdate(ctx, svc, old)
		r.Strategy.Default(svc)
		return svc
	}
	for _, tc := range []struct {
		name  string
		old   *corev1.Service
		mut   func(*corev1.Service)
		want  []string
		check func(t *testing.T, svc *corev1.Service)
	}{
		{
			name: "re-applying without clusterIP keeps the allocated one",
			old:  svcCreate(svcBasic(nil), "10.96.0.10"),
			mut:  func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil },
			check: func(t *testing.T, s *corev1.Service) {
				if diff := cmp.Diff([]string{"10.96.0.10"}, s.Spec.ClusterIPs); diff != "" || s.Spec.ClusterIP != "10.96.0.10" {
					t.Errorf("clusterIP %q clusterIPs diff %s", s.Spec.ClusterIP, diff)
				}
			},
		},
		{
			name: "clusterIP is immutable",
			old:  svcCreate(svcBasic(nil), "10.96.0.10"),
			mut:  func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.11" },
			want: []string{"spec.clusterIPs[0]"},
		},
		{
			name: "node ports carried over",
			old: svcCreate(svcBasic(func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.Ports[0].NodePort = 30080
			}), "10.96.0.10"),
			mut: func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 0 },
			check: func(t *testing.T, s *corev1.Service) {
				if s.Spec.Ports[0].NodePort != 30080 {
					t.Errorf("nodePort = %d, want 30080", s.Spec.Ports[0].NodePort)
				}
			},
		},
		{
			name: "to ExternalName drops the cluster IP and node ports",
			old: svcCreate(svcBasic(func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.Ports[0].NodePort = 30080
			}), "10.96.0.10"),
			mut: func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeExternalName
				s.Spec.ExternalName = "db.example.com"
			},
			check: func(t *testing.T, s *corev1.Service) {
				if s.Spec.ClusterIP != "" || s.Spec.ClusterIPs != nil || s.Spec.Ports[0].NodePort != 0 || s.Spec.ExternalTrafficPolicy != "" || s.Spec.IPFamilyPolicy != nil {
					t.Errorf("type-dependent fields kept: %+v", s.Spec)
				}
			},
		},
		{
			name: "status kept on main resource writes",
			old: func() *corev1.Service {
				s := svcCreate(svcBasic(nil), "10.96.0.10")
				s.Status.Conditions = []metav1.Condition{{Type: "Ready"}}
				return s
			}(),
			mut: func(s *corev1.Service) { s.Status = corev1.ServiceStatus{} },
			check: func(t *testing.T, s *corev1.Service) {
				if len(s.Status.Conditions) != 1 {
					t.Errorf("status not kept: %+v", s.Status)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := update(tc.old, tc.mut)
			metaWantFields(t, validateServiceUpdate(svc, tc.old), tc.want...)
			if tc.check != nil {
				tc.check(t, svc)
			}
		})
	}
}

func TestServiceStatusUpdate(t *testing.T) {
	old := svcCreate(svcBasic(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeLoadBalancer }), "10.96.0.10")
	svc := old.DeepCopy()
	svc.Spec.Ports = nil
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}, {Hostname: "192.0.2.11"}}
	Services().Strategy.PrepareForStatusUpdate(context.Background(), svc, old)
	if len(svc.Spec.Ports) != 1 {
		t.Errorf("status write changed spec.ports: %v", svc.Spec.Ports)
	}
	if m := svc.Status.LoadBalancer.Ingress[0].IPMode; m == nil || *m != corev1.LoadBalancerIPModeVIP {
		t.Errorf("ipMode = %v, want VIP", m)
	}
	metaWantFields(t, validateServiceStatusUpdate(svc, old), "status.loadBalancer.ingress[1].hostname")
}

func TestServiceTable(t *testing.T) {
	created := metav1.NewTime(time.Now().Add(-5 * time.Hour))
	for _, tc := range []struct {
		name string
		svc  *corev1.Service
		want []interface{}
	}{
		{
			name: "clusterIP",
			svc:  svcCreate(svcBasic(nil), "10.96.0.10"),
			want: []interface{}{"web", "ClusterIP", "10.96.0.10", "<none>", "80/TCP", "5h", "app=web"},
		},
		{
			name: "pending load balancer with node port",
			svc: svcCreate(svcBasic(func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeLoadBalancer
				s.Spec.Ports[0].NodePort = 31000
			}), "10.96.0.11"),
			want: []interface{}{"web", "LoadBalancer", "10.96.0.11", "<pending>", "80:31000/TCP", "5h", "app=web"},
		},
		{
			name: "load balancer with ingress",
			svc: func() *corev1.Service {
				s := svcCreate(svcBasic(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeLoadBalancer }), "10.96.0.12")
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.2"}, {Hostname: "lb.example.com"}, {IP: "192.0.2.1"}}
				return s
			}(),
			want: []interface{}{"web", "LoadBalancer", "10.96.0.12", "192.0.2.1,192.0.2.2,lb.example.com", "80/TCP", "5h", "app=web"},
		},
		{
			name: "headless without selector",
			svc: svcCreate(svcBasic(func(s *corev1.Service) {
				s.Spec.ClusterIP, s.Spec.Selector, s.Spec.Ports = "None", nil, nil
			}), ""),
			want: []interface{}{"web", "ClusterIP", "None", "<none>", "<none>", "5h", "<none>"},
		},
		{
			name: "external name",
			svc: svcCreate(svcBasic(func(s *corev1.Service) {
				s.Spec.Type, s.Spec.ExternalName, s.Spec.Ports, s.Spec.Selector = corev1.ServiceTypeExternalName, "db.example.com", nil, nil
			}), ""),
			want: []interface{}{"web", "ExternalName", "<none>", "db.example.com", "<none>", "5h", "<none>"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.svc.CreationTimestamp = created
			tab := Services().Table
			got := tab.Row(tc.svc)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
			if len(got) != len(tab.Columns) {
				t.Errorf("%d cells for %d columns", len(got), len(tab.Columns))
			}
		})
	}
}

func TestServiceFields(t *testing.T) {
	svc := svcCreate(svcBasic(nil), "10.96.0.10")
	want := fields.Set{
		"metadata.name": "web", "metadata.namespace": "default",
		"spec.clusterIP": "10.96.0.10", "spec.type": "ClusterIP",
	}
	if diff := cmp.Diff(want, Services().Fields(svc)); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}
