package servicelb

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/cloud"
)

func svc(mutate ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u1"},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: 30080}},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

var (
	clusterIP  = func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP }
	withClass  = func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("example.com/lb") }
	withFinal  = func(s *corev1.Service) { s.Finalizers = append(s.Finalizers, "other", Finalizer) }
	inDeletion = func(s *corev1.Service) { now := metav1.Now(); s.DeletionTimestamp = &now }
)

func TestDecide(t *testing.T) {
	tests := []struct {
		name        string
		svc         *corev1.Service
		provisioned bool
		want        action
	}{
		{"new load balancer", svc(), false, actionEnsure},
		{"ensured load balancer", svc(withFinal), true, actionEnsure},
		{"cluster IP", svc(clusterIP), false, actionNone},
		{"type changed away", svc(clusterIP, withFinal), true, actionCleanup},
		{"type changed away, finalizer only", svc(clusterIP, withFinal), false, actionCleanup},
		{"finalizer removed by hand", svc(clusterIP), true, actionCleanup},
		{"another class", svc(withClass), false, actionNone},
		{"another class with our finalizer", svc(withClass, withFinal), true, actionCleanup},
		{"being deleted", svc(withFinal, inDeletion), true, actionCleanup},
		{"being deleted, not ours", svc(clusterIP, inDeletion), false, actionNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decide(tt.svc, tt.provisioned); got != tt.want {
				t.Fatalf("decide = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNeedsCleanup(t *testing.T) {
	tests := []struct {
		name string
		svc  *corev1.Service
		want bool
	}{
		{"no finalizer", svc(clusterIP), false},
		{"wants one", svc(withFinal), false},
		{"deleting", svc(withFinal, inDeletion), true},
		{"type changed", svc(withFinal, clusterIP), true},
		{"class", svc(withFinal, withClass), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := needsCleanup(tt.svc); got != tt.want {
				t.Fatalf("needsCleanup = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNeedsUpdate(t *testing.T) {
	tests := []struct {
		name   string
		old    *corev1.Service
		cur    *corev1.Service
		want   bool
		change *change
	}{
		{"neither wants one", svc(clusterIP), svc(clusterIP, func(s *corev1.Service) { s.Spec.Ports[0].Port = 81 }), false, nil},
		{"status only", svc(), svc(func(s *corev1.Service) {
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "127.0.100.1"}}
		}), false, nil},
		{"finalizer only", svc(), svc(withFinal), false, nil},
		{"to load balancer", svc(clusterIP), svc(), true, &change{"Type", "ClusterIP -> LoadBalancer"}},
		{"from load balancer", svc(), svc(clusterIP), true, &change{"Type", "LoadBalancer -> ClusterIP"}},
		{"class set", svc(), svc(withClass), true, &change{"Type", "LoadBalancer -> LoadBalancer"}},
		{"port", svc(), svc(func(s *corev1.Service) { s.Spec.Ports[0].Port = 81 }), true, nil},
		{"node port", svc(), svc(func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30081 }), true, nil},
		{"loadBalancerIP", svc(), svc(func(s *corev1.Service) { s.Spec.LoadBalancerIP = "127.0.100.7" }), true,
			&change{"LoadbalancerIP", " -> 127.0.100.7"}},
		{"source ranges", svc(), svc(func(s *corev1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8"} }), true,
			&change{"LoadBalancerSourceRanges", "[] -> [10.0.0.0/8]"}},
		{"external IP", svc(), svc(func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"1.2.3.4"} }), true,
			&change{"ExternalIP", "Count: 0 -> 1"}},
		{"annotation", svc(), svc(func(s *corev1.Service) { s.Annotations = map[string]string{"a": "b"} }), true, nil},
		{"recreated", svc(), svc(func(s *corev1.Service) { s.UID = "u2" }), true, &change{"UID", "u1 -> u2"}},
		{"traffic policy", svc(), svc(func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }), true,
			&change{"ExternalTrafficPolicy", " -> Local"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ch := needsUpdate(tt.old, tt.cur)
			if got != tt.want {
				t.Fatalf("needsUpdate = %v, want %v", got, tt.want)
			}
			if diff := cmp.Diff(tt.change, ch, cmp.AllowUnexported(change{})); diff != "" {
				t.Fatalf("change (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEligibleNode(t *testing.T) {
	node := func(ready corev1.ConditionStatus, mutate ...func(*corev1.Node)) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}
		if ready != "" {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}
		}
		for _, m := range mutate {
			m(n)
		}
		return n
	}
	tests := []struct {
		name string
		node *corev1.Node
		want bool
	}{
		{"ready", node(corev1.ConditionTrue), true},
		{"not ready", node(corev1.ConditionFalse), false},
		{"unknown", node(corev1.ConditionUnknown), false},
		{"no conditions", node(""), false},
		{"excluded", node(corev1.ConditionTrue, func(n *corev1.Node) {
			n.Labels = map[string]string{corev1.LabelNodeExcludeBalancers: ""}
		}), false},
		{"autoscaler removing it", node(corev1.ConditionTrue, func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: toBeDeletedTaint, Effect: corev1.TaintEffectNoSchedule}}
		}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := eligibleNode(tt.node); got != tt.want {
				t.Fatalf("eligibleNode = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStatusEqual(t *testing.T) {
	vip, proxy := corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPModeProxy
	a := &corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "127.0.100.1", IPMode: &vip}}}
	tests := []struct {
		name string
		b    *corev1.LoadBalancerStatus
		want bool
	}{
		{"same", &corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "127.0.100.1", IPMode: &vip}}}, true},
		{"empty", &corev1.LoadBalancerStatus{}, false},
		{"other ip", &corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "127.0.100.2", IPMode: &vip}}}, false},
		{"other mode", &corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "127.0.100.1", IPMode: &proxy}}}, false},
		{"no mode", &corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "127.0.100.1"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusEqual(a, tt.b); got != tt.want {
				t.Fatalf("statusEqual = %v, want %v", got, tt.want)
			}
		})
	}
}

// noLB is a provider without load balancers.
type noLB struct{}

func (noLB) LoadBalancer() (cloud.LoadBalancer, bool) { return nil, false }
func (noLB) Instances() (cloud.Instances, bool)       { return nil, false }

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"provider without load balancers", Options{Provider: noLB{}}},
		{"bad pool", Options{Pool: "127.0.100.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset()
			if _, err := New(client, informers.NewSharedInformerFactory(client, 0), record.NewFakeRecorder(1), tt.opts); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}
