package resourcemetrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// t0 is the time of the first pass in these tests; passes are 15s apart.
var t0 = time.Unix(1_700_000_000, 0)

const interval = 15 * time.Second

// at returns the time of pass i.
func at(i int) time.Time { return t0.Add(time.Duration(i) * interval) }

// kubelets is a fake of the nodes and their kubelets: each node serves the
// body set for it, or fails with an error when it has none.
type kubelets struct {
	mu     sync.Mutex
	nodes  []string
	bodies map[string]string
}

func (k *kubelets) list(context.Context) ([]*corev1.Node, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []*corev1.Node
	for _, n := range k.nodes {
		out = append(out, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}})
	}
	return out, nil
}

func (k *kubelets) fetch(_ context.Context, node *corev1.Node) (io.ReadCloser, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	b, ok := k.bodies[node.Name]
	if !ok {
		return nil, fmt.Errorf("dial %s: connection refused", node.Name)
	}
	return io.NopCloser(strings.NewReader(b)), nil
}

// harness runs passes of a Scraper against kubelets at chosen times.
type harness struct {
	k    *kubelets
	s    *Scraper
	now  time.Time
	logs bytes.Buffer
}

func newHarness(nodes ...string) *harness {
	h := &harness{k: &kubelets{nodes: nodes, bodies: map[string]string{}}}
	h.s = &Scraper{
		Store:    NewStore(),
		Nodes:    h.k.list,
		Fetch:    h.k.fetch,
		Interval: interval,
		Log:      slog.New(slog.NewTextHandler(&h.logs, nil)),
		Now:      func() time.Time { return h.now },
	}
	return h
}

// pass serves bodies (node -> body; absent nodes fail) and scrapes once at now.
func (h *harness) pass(now time.Time, bodies map[string]string) {
	h.k.mu.Lock()
	h.k.bodies = bodies
	h.k.mu.Unlock()
	h.now = now
	h.s.ScrapeOnce(context.Background())
}

// ctr renders a container's three series as our kubelet does. A negative
// cpu or mem leaves that series out; a zero start leaves it out.
func ctr(ns, pod, name string, cpu, mem float64, start, ts time.Time) string {
	var b strings.Builder
	labels := fmt.Sprintf(`{container=%q,namespace=%q,pod=%q}`, name, ns, pod)
	if cpu >= 0 {
		fmt.Fprintf(&b, "container_cpu_usage_seconds_total%s %g %d\n", labels, cpu, ts.UnixMilli())
	}
	if mem >= 0 {
		fmt.Fprintf(&b, "container_memory_working_set_bytes%s %g %d\n", labels, mem, ts.UnixMilli())
	}
	if !start.IsZero() {
		fmt.Fprintf(&b, "container_start_time_seconds%s %g %d\n", labels, float64(start.UnixNano())/1e9, start.UnixMilli())
	}
	return b.String()
}

// node renders the node's two series.
func node(cpu, mem float64, ts time.Time) string {
	return fmt.Sprintf("node_cpu_usage_seconds_total %g %d\nnode_memory_working_set_bytes %g %d\n",
		cpu, ts.UnixMilli(), mem, ts.UnixMilli())
}

// usageOf is the usage of one container in the tests' own terms.
type usageOf struct {
	Nanocores int64
	Bytes     int64
	At        time.Time
	Window    time.Duration
}

func podUsage(t *testing.T, s *Store, ns, name string) *usageOf {
	t.Helper()
	pm, ok := s.Pod(ns, name)
	if !ok {
		return nil
	}
	if len(pm.Containers) != 1 {
		t.Fatalf("pod %s/%s has %d containers, want 1", ns, name, len(pm.Containers))
	}
	u := pm.Containers[0].Usage
	return &usageOf{
		Nanocores: u.Cpu().ScaledValue(resource.Nano),
		Bytes:     u.Memory().Value(),
		At:        pm.Timestamp.Time,
		Window:    pm.Window.Duration,
	}
}

func TestContainerRate(t *testing.T) {
	const mib = 1 << 20
	long := t0.Add(-time.Hour) // started long before the first scrape
	tests := []struct {
		name   string
		passes []string // container lines of default/p's container c, at pass i
		want   []*usageOf
	}{{
		name: "two scrapes",
		passes: []string{
			ctr("default", "p", "c", 10, mib, long, at(0)),
			ctr("default", "p", "c", 13, 2*mib, long, at(1)),
		},
		want: []*usageOf{nil, {Nanocores: 200_000_000, Bytes: 2 * mib, At: at(1), Window: interval}},
	}, {
		name: "first scrape uses the start time",
		passes: []string{
			ctr("default", "p", "c", 2, mib, t0.Add(-10*time.Second), at(0)),
			ctr("default", "p", "c", 5, mib, t0.Add(-10*time.Second), at(1)),
		},
		want: []*usageOf{
			{Nanocores: 200_000_000, Bytes: mib, At: at(0), Window: 10 * time.Second},
			{Nanocores: 200_000_000, Bytes: mib, At: at(1), Window: interval},
		},
	}, {
		name: "start too recent waits for the next scrape",
		passes: []string{
			ctr("default", "p", "c", 0.5, mib, t0.Add(-2*time.Second), at(0)),
			ctr("default", "p", "c", 2, mib, t0.Add(-2*time.Second), at(1)),
		},
		want: []*usageOf{nil, {Nanocores: 100_000_000, Bytes: mib, At: at(1), Window: interval}},
	}, {
		name: "restart uses the new start time",
		passes: []string{
			ctr("default", "p", "c", 10, mib, long, at(0)),
			ctr("default", "p", "c", 13, mib, long, at(1)),
			ctr("default", "p", "c", 1, mib, at(2).Add(-5*time.Second), at(2)),
		},
		want: []*usageOf{nil, {Nanocores: 200_000_000, Bytes: mib, At: at(1), Window: interval},
			{Nanocores: 200_000_000, Bytes: mib, At: at(2), Window: 5 * time.Second}},
	}, {
		name: "restart just now has no rate until the next scrape",
		passes: []string{
			ctr("default", "p", "c", 10, mib, long, at(0)),
			ctr("default", "p", "c", 13, mib, long, at(1)),
			ctr("default", "p", "c", 14, mib, at(2).Add(-time.Second), at(2)),
			ctr("default", "p", "c", 17, mib, at(2).Add(-time.Second), at(3)),
		},
		want: []*usageOf{nil, {Nanocores: 200_000_000, Bytes: mib, At: at(1), Window: interval}, nil,
			{Nanocores: 200_000_000, Bytes: mib, At: at(3), Window: interval}},
	}, {
		name: "counter reset without a start time",
		passes: []string{
			ctr("default", "p", "c", 100, mib, time.Time{}, at(0)),
			ctr("default", "p", "c", 103, mib, time.Time{}, at(1)),
			ctr("default", "p", "c", 1, mib, time.Time{}, at(2)),
			ctr("default", "p", "c", 4, mib, time.Time{}, at(3)),
		},
		want: []*usageOf{nil, {Nanocores: 200_000_000, Bytes: mib, At: at(1), Window: interval}, nil,
			{Nanocores: 200_000_000, Bytes: mib, At: at(3), Window: interval}},
	}, {
		name: "a repeated reading keeps its rate",
		passes: []string{
			ctr("default", "p", "c", 10, mib, long, at(0)),
			ctr("default", "p", "c", 13, mib, long, at(1)),
			ctr("default", "p", "c", 13, mib, long, at(1)),
		},
		want: []*usageOf{nil, {Nanocores: 200_000_000, Bytes: mib, At: at(1), Window: interval},
			{Nanocores: 200_000_000, Bytes: mib, At: at(1), Window: interval}},
	}, {
		name: "a reading from the past is no rate",
		passes: []string{
			ctr("default", "p", "c", 10, mib, long, at(0)),
			ctr("default", "p", "c", 13, mib, long, at(1)),
			ctr("default", "p", "c", 12, mib, long, at(0).Add(5*time.Second)),
		},
		want: []*usageOf{nil, {Nanocores: 200_000_000, Bytes: mib, At: at(1), Window: interval}, nil},
	}, {
		name: "missing memory leaves the pod out",
		passes: []string{
			ctr("default", "p", "c", 10, mib, long, at(0)),
			ctr("default", "p", "c", 13, -1, long, at(1)),
			ctr("default", "p", "c", 16, mib, long, at(2)),
		},
		want: []*usageOf{nil, nil, {Nanocores: 200_000_000, Bytes: mib, At: at(2), Window: interval}},
	}, {
		name: "zero memory counts as missing",
		passes: []string{
			ctr("default", "p", "c", 10, mib, long, at(0)),
			ctr("default", "p", "c", 13, 0, long, at(1)),
		},
		want: []*usageOf{nil, nil},
	}, {
		name: "missing cpu leaves the pod out and keeps the last reading",
		passes: []string{
			ctr("default", "p", "c", 10, mib, long, at(0)),
			ctr("default", "p", "c", -1, mib, long, at(1)),
			ctr("default", "p", "c", 16, mib, long, at(2)),
		},
		want: []*usageOf{nil, nil, {Nanocores: 200_000_000, Bytes: mib, At: at(2), Window: 2 * interval}},
	}, {
		name: "without timestamps the scrape time is used",
		passes: []string{
			"container_cpu_usage_seconds_total{container=\"c\",namespace=\"default\",pod=\"p\"} 10\n" +
				"container_memory_working_set_bytes{container=\"c\",namespace=\"default\",pod=\"p\"} 1048576\n",
			"container_cpu_usage_seconds_total{container=\"c\",namespace=\"default\",pod=\"p\"} 16\n" +
				"container_memory_working_set_bytes{container=\"c\",namespace=\"default\",pod=\"p\"} 1048576\n",
		},
		want: []*usageOf{nil, {Nanocores: 400_000_000, Bytes: mib, At: at(1), Window: interval}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness("n1")
			for i, body := range tt.passes {
				h.pass(at(i), map[string]string{"n1": body})
				got := podUsage(t, h.s.Store, "default", "p")
				if diff := cmp.Diff(tt.want[i], got); diff != "" {
					t.Errorf("after pass %d (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

func TestPodNeedsEveryContainer(t *testing.T) {
	const mib = 1 << 20
	long := t0.Add(-time.Hour)
	h := newHarness("n1")
	h.pass(at(0), map[string]string{"n1": ctr("ns", "both", "b", 1, mib, long, at(0)) +
		ctr("ns", "both", "a", 1, mib, long, at(0).Add(-time.Second)) +
		ctr("ns", "half", "a", 1, mib, long, at(0)) +
		ctr("ns", "half", "b", 1, mib, long, at(0))})
	h.pass(at(1), map[string]string{"n1": ctr("ns", "both", "b", 4, mib, long, at(1)) +
		ctr("ns", "both", "a", 2.5, 2*mib, long, at(1).Add(-time.Second)) +
		ctr("ns", "half", "a", 4, mib, long, at(1)) +
		ctr("ns", "half", "b", 4, -1, long, at(1))})

	got, ok := h.s.Store.Pod("ns", "both")
	if !ok {
		t.Fatal("pod ns/both has no metrics")
	}
	want := metricsv1beta1.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: "both", Namespace: "ns"},
		// The earliest container reading, as metrics-server.
		Timestamp: metav1.NewTime(at(1).Add(-time.Second)),
		Window:    metav1.Duration{Duration: interval},
		Containers: []metricsv1beta1.ContainerMetrics{{
			Name: "a",
			Usage: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("100m"),
				corev1.ResourceMemory: resource.MustParse("2Mi"),
			},
		}, {
			Name: "b",
			Usage: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("200m"),
				corev1.ResourceMemory: resource.MustParse("1Mi"),
			},
		}},
	}
	quantities := cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })
	if diff := cmp.Diff(want, got, quantities); diff != "" {
		t.Errorf("pod ns/both (-want +got):\n%s", diff)
	}
	if got.Containers[0].Usage.Cpu().String() != "100m" {
		t.Errorf("cpu serializes as %q, want 100m", got.Containers[0].Usage.Cpu().String())
	}
	if _, ok := h.s.Store.Pod("ns", "half"); ok {
		t.Error("pod ns/half has metrics, want none: container b has no memory")
	}

	// A pod the kubelet no longer lists is dropped.
	h.pass(at(2), map[string]string{"n1": ctr("ns", "half", "a", 7, mib, long, at(2)) +
		ctr("ns", "half", "b", 7, mib, long, at(2))})
	if _, ok := h.s.Store.Pod("ns", "both"); ok {
		t.Error("pod ns/both still has metrics after it left the kubelet's output")
	}
	if _, ok := h.s.Store.Pod("ns", "half"); !ok {
		t.Error("pod ns/half has no metrics")
	}
}

func TestNode(t *testing.T) {
	h := newHarness("n1", "n2")
	h.pass(at(0), map[string]string{"n1": node(100, 4e9, at(0)), "n2": node(100, 4e9, at(0))})
	if _, ok := h.s.Store.Node("n1"); ok {
		t.Fatal("node n1 has metrics after one scrape; a node needs two")
	}
	h.pass(at(1), map[string]string{
		"n1": node(130, 5e9, at(1)),
		"n2": "node_cpu_usage_seconds_total 130\n", // no memory
	})
	got, ok := h.s.Store.Node("n1")
	if !ok {
		t.Fatal("node n1 has no metrics")
	}
	want := metricsv1beta1.NodeMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: "n1"},
		Timestamp:  metav1.NewTime(at(1)),
		Window:     metav1.Duration{Duration: interval},
		Usage: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("2"),
			corev1.ResourceMemory: resource.MustParse("5e9"),
		},
	}
	quantities := cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })
	if diff := cmp.Diff(want, got, quantities); diff != "" {
		t.Errorf("node n1 (-want +got):\n%s", diff)
	}
	if _, ok := h.s.Store.Node("n2"); ok {
		t.Error("node n2 has metrics without memory")
	}

	// A node the caller no longer lists is dropped.
	h.k.nodes = []string{"n2"}
	h.pass(at(2), map[string]string{"n1": node(160, 5e9, at(2)), "n2": node(160, 5e9, at(2))})
	if _, ok := h.s.Store.Node("n1"); ok {
		t.Error("node n1 has metrics after it left the node list")
	}
	if _, ok := h.s.Store.Node("n2"); !ok {
		t.Error("node n2 has no metrics")
	}
}

func TestNodeFailsAndRecovers(t *testing.T) {
	const mib = 1 << 20
	long := t0.Add(-time.Hour)
	body := func(i int, cpu float64) map[string]string {
		return map[string]string{"n1": node(100+cpu, 4e9, at(i)) + ctr("ns", "p", "c", cpu, mib, long, at(i))}
	}
	h := newHarness("n1")
	h.pass(at(0), body(0, 10))
	h.pass(at(1), body(1, 13))
	if _, ok := h.s.Store.Pod("ns", "p"); !ok {
		t.Fatal("pod ns/p has no metrics")
	}

	// Failing: out of the Store at once, logged once.
	h.pass(at(2), nil)
	h.pass(at(3), nil)
	if _, ok := h.s.Store.Pod("ns", "p"); ok {
		t.Error("pod ns/p has metrics while its node fails")
	}
	if _, ok := h.s.Store.Node("n1"); ok {
		t.Error("node n1 has metrics while it fails")
	}
	// Back within two intervals: the rate spans the gap.
	h.pass(at(3).Add(interval/2), body(3, 16))
	got := podUsage(t, h.s.Store, "ns", "p")
	want := &usageOf{Nanocores: 100_000_000, Bytes: mib, At: at(3), Window: 2 * interval}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after recovery (-want +got):\n%s", diff)
	}

	// Failing longer than two intervals: the readings are dropped, so the
	// first scrape after has no rate.
	for i := 4; i <= 7; i++ {
		h.pass(at(i), nil)
	}
	h.pass(at(8), body(8, 100))
	if got := podUsage(t, h.s.Store, "ns", "p"); got != nil {
		t.Errorf("pod ns/p has usage %+v from readings older than two intervals", got)
	}
	if _, ok := h.s.Store.Node("n1"); ok {
		t.Error("node n1 has usage from readings older than two intervals")
	}
	h.pass(at(9), body(9, 103))
	if got := podUsage(t, h.s.Store, "ns", "p"); got == nil {
		t.Error("pod ns/p has no metrics after two scrapes")
	}

	logs := h.logs.String()
	if n := strings.Count(logs, "scrape kubelet resource metrics failed"); n != 2 {
		t.Errorf("logged %d failures for two outages, want 2:\n%s", n, logs)
	}
	if n := strings.Count(logs, "scrape kubelet resource metrics recovered"); n != 2 {
		t.Errorf("logged %d recoveries for two outages, want 2:\n%s", n, logs)
	}
	if !strings.Contains(logs, "connection refused") {
		t.Errorf("the failure's reason is not logged:\n%s", logs)
	}
}

func TestScrapeFailsOnBounds(t *testing.T) {
	h := newHarness("n1")
	h.pass(at(0), map[string]string{"n1": strings.Repeat("node_memory_working_set_bytes 1\n", maxSeries+1)})
	if logs := h.logs.String(); !strings.Contains(logs, "too many series") {
		t.Errorf("the series bound is not logged:\n%s", logs)
	}
}

func TestNodesFails(t *testing.T) {
	const mib = 1 << 20
	long := t0.Add(-time.Hour)
	h := newHarness("n1")
	fail := false
	h.s.Nodes = func(ctx context.Context) ([]*corev1.Node, error) {
		if fail {
			return nil, errors.New("informer not synced")
		}
		return h.k.list(ctx)
	}
	h.pass(at(0), map[string]string{"n1": ctr("ns", "p", "c", 10, mib, long, at(0))})
	h.pass(at(1), map[string]string{"n1": ctr("ns", "p", "c", 13, mib, long, at(1))})
	fail = true
	h.pass(at(2), nil)
	if _, ok := h.s.Store.Pod("ns", "p"); !ok {
		t.Error("pod ns/p lost its metrics at the first failure to list nodes")
	}
	h.pass(at(4), nil)
	if _, ok := h.s.Store.Pod("ns", "p"); ok {
		t.Error("pod ns/p kept metrics older than two intervals")
	}
	if n := strings.Count(h.logs.String(), "list nodes for resource metrics failed"); n != 1 {
		t.Errorf("logged %d failures to list nodes, want 1:\n%s", n, h.logs.String())
	}
}

func TestRunStopsWithContext(t *testing.T) {
	h := newHarness("n1")
	ctx, cancel := context.WithCancel(context.Background())
	h.now = t0
	h.s.Fetch = func(ctx context.Context, node *corev1.Node) (io.ReadCloser, error) {
		cancel() // the first scrape ends the run
		return nil, ctx.Err()
	}
	done := make(chan error, 1)
	go func() { done <- h.s.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if strings.Contains(h.logs.String(), "failed") {
		t.Errorf("shutdown logged as a failure:\n%s", h.logs.String())
	}
	if err := (&Scraper{}).Run(context.Background()); !errors.Is(err, errNotConfigured) {
		t.Errorf("Run without Store, Nodes, Fetch = %v, want %v", err, errNotConfigured)
	}
}

func TestHungKubeletTimesOut(t *testing.T) {
	const mib = 1 << 20
	long := t0.Add(-time.Hour)
	h := newHarness("hung", "ok")
	h.s.Timeout = 50 * time.Millisecond
	fetch := h.s.Fetch
	h.s.Fetch = func(ctx context.Context, node *corev1.Node) (io.ReadCloser, error) {
		if node.Name == "hung" {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return fetch(ctx, node)
	}
	h.pass(at(0), map[string]string{"ok": ctr("ns", "p", "c", 10, mib, long, at(0))})
	h.pass(at(1), map[string]string{"ok": ctr("ns", "p", "c", 13, mib, long, at(1))})
	if _, ok := h.s.Store.Pod("ns", "p"); !ok {
		t.Error("pod ns/p on a healthy node has no metrics")
	}
	logs := h.logs.String()
	if n := strings.Count(logs, "scrape kubelet resource metrics failed"); n != 1 ||
		!strings.Contains(logs, "node=hung") || !strings.Contains(logs, "deadline exceeded") {
		t.Errorf("want one failure of node hung for its deadline, logged:\n%s", logs)
	}
}
