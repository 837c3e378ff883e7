package sim

import (
	"bytes"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

func requests(cpu, mem string) corev1.ResourceRequirements {
	r := corev1.ResourceList{}
	if cpu != "" {
		r[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		r[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	return corev1.ResourceRequirements{Requests: r}
}

// usagePod is a Running pod on node whose containers (by name) run since
// start, with the given requests.
func usagePod(name, node string, start time.Time, ann map[string]string, containers ...corev1.Container) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: ann},
		Spec:       corev1.PodSpec{NodeName: node, Containers: containers},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, StartTime: ptr.To(metav1.NewTime(start))},
	}
	for _, c := range containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(start)}},
		})
	}
	return p
}

func TestRunningContainers(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	later := start.Add(time.Minute)
	withReq := corev1.Container{Name: "a", Resources: requests("200m", "100Mi")}
	noReq := corev1.Container{Name: "b"}

	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want []runningContainer
	}{
		{
			name: "annotations apply to each container",
			pod:  usagePod("p", "n", start, map[string]string{AnnotationCPUUsage: "250m", AnnotationMemoryUsage: "64Mi"}, withReq, noReq),
			want: []runningContainer{
				{name: "a", start: start, cores: 0.25, memory: 64 << 20},
				{name: "b", start: start, cores: 0.25, memory: 64 << 20},
			},
		},
		{
			name: "fraction of requests",
			pod:  usagePod("p", "n", start, nil, withReq, noReq),
			want: []runningContainer{
				{name: "a", start: start, cores: 0.1, memory: 50 << 20},
				{name: "b", start: start},
			},
		},
		{
			name: "unparsable or negative annotation falls back",
			pod:  usagePod("p", "n", start, map[string]string{AnnotationCPUUsage: "lots", AnnotationMemoryUsage: "-1"}, withReq),
			want: []runningContainer{{name: "a", start: start, cores: 0.1, memory: 50 << 20}},
		},
		{
			name: "not running",
			pod: func() *corev1.Pod {
				p := usagePod("p", "n", start, nil, withReq)
				p.Status.Phase = corev1.PodPending
				return p
			}(),
		},
		{
			name: "restarted container starts later, exited one is left out, one without status starts with the pod",
			pod: func() *corev1.Pod {
				p := usagePod("p", "n", start, nil, withReq, noReq, corev1.Container{Name: "c"})
				p.Status.ContainerStatuses[0].State.Running.StartedAt = metav1.NewTime(later)
				p.Status.ContainerStatuses[1].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}
				p.Status.ContainerStatuses = p.Status.ContainerStatuses[:2]
				return p
			}(),
			want: []runningContainer{
				{name: "a", start: later, cores: 0.1, memory: 50 << 20},
				{name: "c", start: start},
			},
		},
		{
			name: "sidecars count, init containers do not",
			pod: func() *corev1.Pod {
				p := usagePod("p", "n", start, nil, noReq)
				p.Spec.InitContainers = []corev1.Container{
					{Name: "init", Resources: requests("1", "")},
					{Name: "side", Resources: requests("1", ""), RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)},
				}
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{
					{Name: "init", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}},
					{Name: "side", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(start)}}},
				}
				return p
			}(),
			want: []runningContainer{{name: "side", start: start, cores: 0.5}, {name: "b", start: start}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runningContainers(tc.pod, 0.5, nil)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(runningContainer{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestNodeCPUCounter checks that a node's CPU counter counts from its
// registration, keeps what a pod used once the pod is gone, and never goes
// back even when a scrape sees the cache change before accountPod.
func TestNodeCPUCounter(t *testing.T) {
	cfg := Defaults()
	cfg.Nodes = 1
	s := New(nil, cfg)
	s.pods = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{podNodeIndex: indexPodNode})
	n := s.byIndex[0]
	now := time.Now()
	n.registeredAt.Store(now.Add(-5 * time.Second).UnixNano())

	pod := usagePod("p", n.name, now.Add(-10*time.Second), map[string]string{AnnotationCPUUsage: "1"}, corev1.Container{Name: "c"})
	other := usagePod("q", "elsewhere", now.Add(-10*time.Second), map[string]string{AnnotationCPUUsage: "1"}, corev1.Container{Name: "c"})
	for _, p := range []*corev1.Pod{pod, other} {
		if err := s.pods.Add(p); err != nil {
			t.Fatal(err)
		}
	}

	near := func(what string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol {
			t.Errorf("%s = %v, want %v ± %v", what, got, want, tol)
		}
	}
	u := s.nodeUsage(n, now)
	if len(u.pods) != 1 || len(u.pods[0].containers) != 1 || u.pods[0].name != "p" {
		t.Fatalf("pods = %+v, want p alone", u.pods)
	}
	near("container cpu", u.pods[0].containers[0].cpuSeconds, 10, 1e-6)
	near("node cpu (since registration)", u.cpuSeconds, 5*(1+nodeSystemCores), 1e-6)
	if u.memoryBytes != nodeSystemMemory {
		t.Errorf("node memory %d, want the system's %d", u.memoryBytes, nodeSystemMemory)
	}

	// The cache loses the pod before the handler runs: the counter holds.
	if err := s.pods.Delete(pod); err != nil {
		t.Fatal(err)
	}
	held := s.nodeUsage(n, now.Add(time.Second)).cpuSeconds
	near("node cpu before accountPod", held, 5*(1+nodeSystemCores), 1e-6)

	// accountPod (at the real time, a little after now) keeps what it used.
	s.accountPod(pod, nil)
	elapsed := time.Since(now).Seconds()
	after := s.nodeUsage(n, now.Add(time.Hour)).cpuSeconds
	near("node cpu an hour after the pod is gone", after, 5+elapsed+nodeSystemCores*3605, elapsed+0.01)
	if after < held {
		t.Errorf("node cpu went back: %v -> %v", held, after)
	}

	// Before registration nothing counts.
	s2 := New(nil, cfg)
	s2.pods = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{podNodeIndex: indexPodNode})
	s2.accountPod(nil, pod)
	if err := s2.pods.Add(pod); err != nil {
		t.Fatal(err)
	}
	if u := s2.nodeUsage(s2.byIndex[0], now); u.cpuSeconds != 0 || len(u.pods) != 1 {
		t.Errorf("unregistered node: cpu %v, %d pods; want 0, 1", u.cpuSeconds, len(u.pods))
	}
}

// BenchmarkNodeMetrics is one scrape of a node with 10 pods: reading the
// cache and rendering the body.
func BenchmarkNodeMetrics(b *testing.B) {
	cfg := Defaults()
	s := New(nil, cfg)
	s.pods = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{podNodeIndex: indexPodNode})
	n := s.byIndex[0]
	now := time.Now()
	n.registeredAt.Store(now.Add(-time.Hour).UnixNano())
	for i := range 10 {
		p := usagePod(fmt.Sprintf("pod-%d", i), n.name, now.Add(-time.Minute), nil,
			corev1.Container{Name: "app", Resources: requests("500m", "256Mi")})
		if err := s.pods.Add(p); err != nil {
			b.Fatal(err)
		}
	}
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		writeResourceMetrics(&buf, s.nodeUsage(n, time.Now()))
	}
}
