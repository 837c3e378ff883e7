package endpoints

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func svc() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
}

func pod(name, ip string, ready bool, opts ...func(*corev1.Pod)) *corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// summary is a compact view of subsets: "port: ready IPs | not ready IPs".
func summary(subs []corev1.EndpointSubset) []string {
	var out []string
	for _, s := range subs {
		line := ""
		for _, p := range s.Ports {
			line += fmt.Sprintf("%s=%d ", p.Name, p.Port)
		}
		line += ":"
		for _, a := range s.Addresses {
			line += " " + a.IP
			if a.Hostname != "" {
				line += "(" + a.Hostname + ")"
			}
		}
		line += " |"
		for _, a := range s.NotReadyAddresses {
			line += " " + a.IP
		}
		out = append(out, line)
	}
	return out
}

func TestSubsets(t *testing.T) {
	now := metav1.NewTime(time.Unix(1000, 0))
	deleting := func(p *corev1.Pod) { p.DeletionTimestamp = &now }
	tests := []struct {
		name      string
		svc       func(*corev1.Service)
		pods      []*corev1.Pod
		max       int
		want      []string
		truncated bool
	}{
		{
			name: "ready and not ready sorted by IP",
			pods: []*corev1.Pod{pod("b", "10.0.0.2", true), pod("a", "10.0.0.1", true), pod("c", "10.0.0.3", false)},
			want: []string{"http=8080 : 10.0.0.1 10.0.0.2 | 10.0.0.3"},
		},
		{
			name: "terminating, finished and IP-less pods are skipped",
			pods: []*corev1.Pod{
				pod("a", "10.0.0.1", true, deleting),
				pod("b", "10.0.0.2", true, func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }),
				pod("c", "", true),
				pod("d", "10.0.0.4", true),
			},
			want: []string{"http=8080 : 10.0.0.4 |"},
		},
		{
			name: "publishNotReadyAddresses: all ready, terminating kept",
			svc:  func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true },
			pods: []*corev1.Pod{pod("a", "10.0.0.1", false), pod("b", "10.0.0.2", true, deleting)},
			want: []string{"http=8080 : 10.0.0.1 10.0.0.2 |"},
		},
		{
			name: "different named port resolutions give different subsets; missing name drops the pod",
			pods: []*corev1.Pod{
				pod("a", "10.0.0.1", true),
				pod("b", "10.0.0.2", true, func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 9000 }),
				pod("c", "10.0.0.3", true, func(p *corev1.Pod) { p.Spec.Containers[0].Ports = nil }),
			},
			want: []string{"http=8080 : 10.0.0.1 |", "http=9000 : 10.0.0.2 |"},
		},
		{
			name: "headless without ports, hostname from subdomain",
			svc: func(s *corev1.Service) {
				s.Spec.Ports = nil
				s.Spec.ClusterIP = corev1.ClusterIPNone
			},
			pods: []*corev1.Pod{pod("a", "10.0.0.1", true, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "a", "web" })},
			want: []string{": 10.0.0.1(a) |"},
		},
		{
			name:      "truncated to max, ready first",
			pods:      []*corev1.Pod{pod("a", "10.0.0.1", false), pod("b", "10.0.0.2", true), pod("c", "10.0.0.3", true)},
			max:       2,
			want:      []string{"http=8080 : 10.0.0.2 10.0.0.3 |"},
			truncated: true,
		},
		{
			name: "no pods",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := svc()
			if tt.svc != nil {
				tt.svc(s)
			}
			max := tt.max
			if max == 0 {
				max = MaxAddresses
			}
			subs, truncated := subsets(s, tt.pods, max)
			if diff := cmp.Diff(tt.want, summary(subs)); diff != "" {
				t.Errorf("subsets (-want +got):\n%s", diff)
			}
			if truncated != tt.truncated {
				t.Errorf("truncated = %v, want %v", truncated, tt.truncated)
			}
		})
	}
}

func TestBuildAndUpToDate(t *testing.T) {
	s := svc()
	s.Labels = map[string]string{"app": "web"}
	subs, _ := subsets(s, []*corev1.Pod{pod("a", "10.0.0.1", true)}, MaxAddresses)
	next := build(s, nil, subs, false)
	if next.Labels[labelSkipMirror] != "true" || next.Labels["app"] != "web" || next.Name != "web" {
		t.Errorf("built %v", next.ObjectMeta)
	}
	if !upToDate(next.DeepCopy(), build(s, next, subs, false)) {
		t.Error("same content not up to date")
	}
	trunc := build(s, next, subs, true)
	if trunc.Annotations[annotationOverCapacity] != overCapacityTruncated || upToDate(next, trunc) {
		t.Error("truncation annotation not set or not detected")
	}
	if _, ok := build(s, trunc, subs, false).Annotations[annotationOverCapacity]; ok {
		t.Error("over-capacity annotation not cleared")
	}
	if upToDate(next, build(s, next, nil, false)) {
		t.Error("emptied subsets reported up to date")
	}
	if !equalSubsets(nil, []corev1.EndpointSubset{}) {
		t.Error("nil and empty subsets differ")
	}
}
