package endpointslice

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func testService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "svc-uid", Labels: map[string]string{"app": "web"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
				{Name: "metrics", Port: 9090, Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

type podOpt func(*corev1.Pod)

func testPod(name, ip string, ready bool, opts ...podOpt) *corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

func TestDesired(t *testing.T) {
	now := metav1.NewTime(time.Unix(1000, 0))
	zone := func(n string) string {
		if n == "n1" {
			return "z1"
		}
		return ""
	}
	type want struct {
		ip                        string
		ready, serving, terminate bool
		hostname                  string
	}
	tests := []struct {
		name     string
		svc      func(*corev1.Service)
		pods     []*corev1.Pod
		want     []want
		wantPort int32 // resolved http port of the single group
	}{
		{
			name:     "ready and not ready",
			pods:     []*corev1.Pod{testPod("a", "10.0.0.1", true), testPod("b", "10.0.0.2", false)},
			want:     []want{{ip: "10.0.0.1", ready: true, serving: true}, {ip: "10.0.0.2"}},
			wantPort: 8080,
		},
		{
			name: "terminating pod serves but is not ready",
			pods: []*corev1.Pod{testPod("a", "10.0.0.1", true, func(p *corev1.Pod) { p.DeletionTimestamp = &now })},
			want: []want{{ip: "10.0.0.1", serving: true, terminate: true}},
		},
		{
			name: "publishNotReadyAddresses makes everything ready",
			svc:  func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true },
			pods: []*corev1.Pod{testPod("a", "10.0.0.1", false), testPod("b", "10.0.0.2", true, func(p *corev1.Pod) { p.DeletionTimestamp = &now })},
			want: []want{{ip: "10.0.0.1", ready: true}, {ip: "10.0.0.2", ready: true, serving: true, terminate: true}},
		},
		{
			name: "no IP, finished and IPv6-only pods are left out",
			pods: []*corev1.Pod{
				testPod("a", "", true),
				testPod("b", "10.0.0.2", true, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
				testPod("c", "fd00::1", true),
				nil,
			},
		},
		{
			name: "hostname when subdomain is the service",
			pods: []*corev1.Pod{
				testPod("a", "10.0.0.1", true, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "a-host", "web" }),
				testPod("b", "10.0.0.2", true, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "b-host", "other" }),
			},
			want: []want{{ip: "10.0.0.1", ready: true, serving: true, hostname: "a-host"}, {ip: "10.0.0.2", ready: true, serving: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := testService()
			if tt.svc != nil {
				tt.svc(svc)
			}
			groups := desired(svc, tt.pods, zone)
			var got []want
			for _, g := range groups {
				if tt.wantPort != 0 && *g.ports[0].Port != tt.wantPort {
					t.Errorf("http port = %d, want %d", *g.ports[0].Port, tt.wantPort)
				}
				for _, ep := range g.endpoints {
					if ep.Zone == nil || *ep.Zone != "z1" || ep.NodeName == nil || *ep.NodeName != "n1" {
						t.Errorf("endpoint %v: node/zone not set", ep.Addresses)
					}
					got = append(got, want{ip: ep.Addresses[0], ready: *ep.Conditions.Ready, serving: *ep.Conditions.Serving,
						terminate: *ep.Conditions.Terminating, hostname: deref(ep.Hostname)})
				}
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("endpoints (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDesiredGroupsByPortMapping(t *testing.T) {
	other := func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 9000 }
	noName := func(p *corev1.Pod) { p.Spec.Containers[0].Ports = nil }
	groups := desired(testService(), []*corev1.Pod{
		testPod("a", "10.0.0.1", true), testPod("b", "10.0.0.2", true, other), testPod("c", "10.0.0.3", true, noName),
	}, nil)
	if len(groups) != 3 {
		t.Fatalf("got %d groups, want 3: %v", len(groups), groups)
	}
	for _, g := range groups {
		if len(g.endpoints) != 1 {
			t.Errorf("group %s has %d endpoints", portsKey(g.ports), len(g.endpoints))
		}
		if g.endpoints[0].TargetRef.Name == "c" && len(g.ports) != 1 {
			t.Errorf("pod without the named port should only get the numeric port, got %d ports", len(g.ports))
		}
	}
}

// existingFrom turns a plan's creates into stored slices, as the server
// would return them.
func existingFrom(p plan) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for i, s := range append(p.create, p.update...) {
		s = s.DeepCopy()
		if s.Name == "" {
			s.Name = fmt.Sprintf("%s%d", s.GenerateName, i)
		}
		out = append(out, s)
	}
	return out
}

func TestPlanSlices(t *testing.T) {
	svc := testService()
	many := func(n int) []*corev1.Pod {
		var pods []*corev1.Pod
		for i := range n {
			pods = append(pods, testPod(fmt.Sprintf("p%03d", i), fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), true))
		}
		return pods
	}

	t.Run("creates slices of at most 100 and then is quiet", func(t *testing.T) {
		pods := many(250)
		p := planSlices(svc, nil, desired(svc, pods, nil), 100, "")
		if len(p.create) != 3 || len(p.update) != 0 || len(p.delete) != 0 {
			t.Fatalf("plan = %d/%d/%d creates/updates/deletes, want 3/0/0", len(p.create), len(p.update), len(p.delete))
		}
		for _, s := range p.create {
			if len(s.Endpoints) > 100 {
				t.Errorf("slice has %d endpoints", len(s.Endpoints))
			}
			if s.Labels[discoveryv1.LabelServiceName] != "web" || s.Labels[discoveryv1.LabelManagedBy] != ManagedBy || s.Labels["app"] != "web" {
				t.Errorf("labels = %v", s.Labels)
			}
			if ref := metav1.GetControllerOf(s); ref == nil || ref.UID != svc.UID || ref.Kind != "Service" {
				t.Errorf("owner = %v", ref)
			}
			if s.GenerateName != "web-" || s.AddressType != discoveryv1.AddressTypeIPv4 {
				t.Errorf("generateName %q addressType %q", s.GenerateName, s.AddressType)
			}
		}
		again := planSlices(svc, existingFrom(p), desired(svc, pods, nil), 100, "later")
		if !again.empty() {
			t.Errorf("second plan not empty: %d/%d/%d", len(again.create), len(again.update), len(again.delete))
		}
	})

	t.Run("one pod going not ready rewrites only its slice", func(t *testing.T) {
		pods := many(250)
		existing := existingFrom(planSlices(svc, nil, desired(svc, pods, nil), 100, ""))
		pods[120].Status.Conditions[0].Status = corev1.ConditionFalse
		p := planSlices(svc, existing, desired(svc, pods, nil), 100, "")
		if len(p.create) != 0 || len(p.update) != 1 || len(p.delete) != 0 {
			t.Fatalf("plan = %d/%d/%d, want 0/1/0", len(p.create), len(p.update), len(p.delete))
		}
		for _, ep := range p.update[0].Endpoints {
			if ep.TargetRef.Name == "p120" && *ep.Conditions.Ready {
				t.Error("p120 still ready")
			}
		}
	})

	t.Run("new endpoints fill slices with room before new slices", func(t *testing.T) {
		pods := many(150) // slices of 100 and 50
		existing := existingFrom(planSlices(svc, nil, desired(svc, pods, nil), 100, ""))
		pods = append(pods, many(160)[150:]...)
		p := planSlices(svc, existing, desired(svc, pods, nil), 100, "")
		if len(p.create) != 0 || len(p.update) != 1 || len(p.update[0].Endpoints) != 60 {
			t.Fatalf("plan = %d creates, %d updates, want the 50-slice filled to 60", len(p.create), len(p.update))
		}
	})

	t.Run("removed pods leave; an emptied slice is deleted", func(t *testing.T) {
		pods := many(150)
		existing := existingFrom(planSlices(svc, nil, desired(svc, pods, nil), 100, ""))
		p := planSlices(svc, existing, desired(svc, pods[:100], nil), 100, "")
		if len(p.create) != 0 || len(p.update) != 0 || len(p.delete) != 1 {
			t.Fatalf("plan = %d/%d/%d, want 0/0/1", len(p.create), len(p.update), len(p.delete))
		}
	})

	t.Run("no endpoints keeps one placeholder", func(t *testing.T) {
		existing := existingFrom(planSlices(svc, nil, desired(svc, many(3), nil), 100, ""))
		p := planSlices(svc, existing, desired(svc, nil, nil), 100, "")
		if len(p.create) != 1 || len(p.delete) != 1 || len(p.create[0].Endpoints) != 0 {
			t.Fatalf("plan = %d/%d/%d, want placeholder create and delete", len(p.create), len(p.update), len(p.delete))
		}
		again := planSlices(svc, existingFrom(plan{create: p.create}), desired(svc, nil, nil), 100, "")
		if !again.empty() {
			t.Error("placeholder rewritten")
		}
	})

	t.Run("slices of an older service of the same name are deleted", func(t *testing.T) {
		existing := existingFrom(planSlices(svc, nil, desired(svc, many(3), nil), 100, ""))
		newSvc := testService()
		newSvc.UID = "other"
		p := planSlices(newSvc, existing, desired(newSvc, many(3), nil), 100, "")
		if len(p.create) != 1 || len(p.delete) != 1 {
			t.Fatalf("plan = %d/%d/%d, want 1/0/1", len(p.create), len(p.update), len(p.delete))
		}
	})

	t.Run("service label change updates labels", func(t *testing.T) {
		existing := existingFrom(planSlices(svc, nil, desired(svc, many(3), nil), 100, ""))
		s2 := testService()
		s2.Labels["tier"] = "front"
		p := planSlices(s2, existing, desired(s2, many(3), nil), 100, "t")
		if len(p.update) != 1 || p.update[0].Labels["tier"] != "front" || p.update[0].Annotations[annotationTriggerTime] != "t" {
			t.Fatalf("plan = %+v", p.update)
		}
	})

	t.Run("nil service", func(t *testing.T) {
		if p := planSlices(nil, nil, nil, 0, ""); !p.empty() {
			t.Error("plan for nil service")
		}
	})
}

func TestTrackerStale(t *testing.T) {
	tr := newTracker()
	now := time.Unix(0, 0)
	tr.now = func() time.Time { return now }
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "a", ResourceVersion: "10"}}
	tr.wrote("ns/web", s)
	if !tr.stale("ns/web", nil) {
		t.Error("missing created slice not stale")
	}
	old := s.DeepCopy()
	old.ResourceVersion = "9"
	if !tr.stale("ns/web", []*discoveryv1.EndpointSlice{old}) {
		t.Error("older version not stale")
	}
	newer := s.DeepCopy()
	newer.ResourceVersion = "11"
	if tr.stale("ns/web", []*discoveryv1.EndpointSlice{newer}) {
		t.Error("newer version stale")
	}
	tr.deleted("ns/web", "a")
	if !tr.stale("ns/web", []*discoveryv1.EndpointSlice{newer}) {
		t.Error("deleted slice still cached not stale")
	}
	now = now.Add(time.Minute)
	if tr.stale("ns/web", []*discoveryv1.EndpointSlice{newer}) {
		t.Error("entry not expired")
	}
}
