package kubelet

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestAdmissionFailure(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pod := func(name string, created int, ports ...corev1.ContainerPort) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name), CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(created) * time.Second))},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Ports: ports}}},
		}
	}
	tcp := func(port int32) corev1.ContainerPort {
		return corev1.ContainerPort{ContainerPort: port, HostPort: port}
	}
	started := func(p *corev1.Pod) *corev1.Pod {
		now := metav1.NewTime(t0)
		p.Status.StartTime = &now
		p.Status.Phase = corev1.PodRunning
		return p
	}
	for _, tc := range []struct {
		name   string
		pod    *corev1.Pod
		others []*corev1.Pod
		reject bool
	}{
		{"no host ports", pod("new", 2, corev1.ContainerPort{ContainerPort: 80}), []*corev1.Pod{started(pod("old", 1, tcp(80)))}, false},
		{"port held by a running pod", pod("new", 2, tcp(21017)), []*corev1.Pod{started(pod("old", 1, tcp(21017)))}, true},
		{"port held by an admitted newer pod", pod("new", 1, tcp(21017)), []*corev1.Pod{started(pod("newer", 2, tcp(21017)))}, true},
		{"older pending pod wins", pod("new", 2, tcp(21017)), []*corev1.Pod{pod("old", 1, tcp(21017))}, true},
		{"newer pending pod loses", pod("old", 1, tcp(21017)), []*corev1.Pod{pod("new", 2, tcp(21017))}, false},
		{"other port", pod("new", 2, tcp(8080)), []*corev1.Pod{started(pod("old", 1, tcp(21017)))}, false},
		{"other protocol", pod("new", 2, corev1.ContainerPort{HostPort: 53, ContainerPort: 53, Protocol: corev1.ProtocolUDP}), []*corev1.Pod{started(pod("old", 1, tcp(53)))}, false},
		{"other address", pod("new", 2, corev1.ContainerPort{HostPort: 80, ContainerPort: 80, HostIP: "10.0.0.1"}), []*corev1.Pod{started(pod("old", 1, corev1.ContainerPort{HostPort: 80, ContainerPort: 80, HostIP: "10.0.0.2"}))}, false},
		{"any address against one", pod("new", 2, tcp(80)), []*corev1.Pod{started(pod("old", 1, corev1.ContainerPort{HostPort: 80, ContainerPort: 80, HostIP: "10.0.0.2"}))}, true},
		{"terminal pod frees its port", pod("new", 2, tcp(80)), []*corev1.Pod{func() *corev1.Pod {
			p := started(pod("old", 1, tcp(80)))
			p.Status.Phase = corev1.PodFailed
			return p
		}()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, msg := admissionFailure(tc.pod, tc.others)
			if got := reason != ""; got != tc.reject {
				t.Fatalf("rejected = %v (%q), want %v", got, reason, tc.reject)
			}
			if tc.reject && (reason != "NodePorts" || msg != "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports") {
				t.Errorf("reason %q message %q", reason, msg)
			}
		})
	}
}
