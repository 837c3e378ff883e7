package proxy

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// testService is a ClusterIP Service ns/name on ip with one TCP port 80
// (target 8080); mods adjust it.
func testService(name, ip string, mods ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeClusterIP,
			ClusterIP:  ip,
			ClusterIPs: []string{ip},
			Ports: []corev1.ServicePort{{
				Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080),
			}},
		},
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func nodePort(port int32) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = port
	}
}

func loadBalancer(port int32, ips ...string) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = port
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
		}
	}
}

func externalLocal(s *corev1.Service) {
	s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
}

func internalLocal(s *corev1.Service) {
	p := corev1.ServiceInternalTrafficPolicyLocal
	s.Spec.InternalTrafficPolicy = &p
}

func clientIPAffinity(seconds int32) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &seconds}}
	}
}

func labelled(k, v string) func(*corev1.Service) {
	return func(s *corev1.Service) { s.Labels = map[string]string{k: v} }
}

// testEndpoint is one endpoint of a test slice.
type testEndpoint struct {
	ip                          string
	node                        string
	ready, serving, terminating bool
}

func ready(ip, node string) testEndpoint {
	return testEndpoint{ip: ip, node: node, ready: true, serving: true}
}

func terminating(ip, node string, serving bool) testEndpoint {
	return testEndpoint{ip: ip, node: node, serving: serving, terminating: true}
}

// testSlice is an IPv4 EndpointSlice of Service ns/svc with port "http"
// 8080.
func testSlice(svc, name string, eps ...testEndpoint) *discoveryv1.EndpointSlice {
	portName, proto, port := "http", corev1.ProtocolTCP, int32(8080)
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Protocol: &proto, Port: &port}},
	}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{e.ip},
			NodeName:  &e.node,
			Conditions: discoveryv1.EndpointConditions{
				Ready: &e.ready, Serving: &e.serving, Terminating: &e.terminating,
			},
		})
	}
	return s
}

// world is a set of Services and slices, built into updates for a syncer.
type world struct {
	services []*corev1.Service
	slices   []*discoveryv1.EndpointSlice
}

func (w world) updates(cfg *ruleConfig) map[types.NamespacedName]*serviceRules {
	out := map[types.NamespacedName]*serviceRules{}
	for _, svc := range w.services {
		var mine []*discoveryv1.EndpointSlice
		for _, s := range w.slices {
			if s.Namespace == svc.Namespace && s.Labels[discoveryv1.LabelServiceName] == svc.Name {
				mine = append(mine, s)
			}
		}
		out[types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}] = buildService(cfg, svc, mine)
	}
	return out
}

// bigWorld is n Services of m ready endpoints each (ClusterIPs from
// 10.43.0.0, endpoints from 10.42.0.0).
func bigWorld(n, m int) world {
	var w world
	ep := 0
	for i := range n {
		name := "svc-" + strconv.Itoa(i)
		ip := "10.43." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250+1)
		w.services = append(w.services, testService(name, ip))
		var eps []testEndpoint
		for range m {
			eps = append(eps, ready("10.42."+strconv.Itoa(ep/250)+"."+strconv.Itoa(ep%250+1), "node-a"))
			ep++
		}
		w.slices = append(w.slices, testSlice(name, name+"-1", eps...))
	}
	return w
}
