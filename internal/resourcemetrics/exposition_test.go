package resourcemetrics

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// What Write writes, the Scraper reads back: rates, working sets, an
// escaped label, and a pod with a container short of memory left out.
func TestExpositionRoundTrip(t *testing.T) {
	start := at(0).Add(-interval)
	expose := func(ts time.Time, cpu float64) string {
		v := func(x float64) *Value { return &Value{V: x, At: ts} }
		e := Exposition{
			Node: NodeUsage{CPUSeconds: v(2 * cpu), MemoryBytes: v(1 << 30)},
			Pods: []PodUsage{
				{Namespace: "default", Name: `we"b`, CPUSeconds: v(cpu), MemoryBytes: v(64 << 20), Containers: []ContainerUsage{
					{Name: "app", Start: start, CPUSeconds: v(cpu), MemoryBytes: v(64 << 20)},
				}},
				{Namespace: "default", Name: "half", Containers: []ContainerUsage{
					{Name: "a", Start: start, CPUSeconds: v(cpu), MemoryBytes: v(1 << 20)},
					{Name: "b", Start: start, CPUSeconds: v(cpu)},
				}},
			},
		}
		var b bytes.Buffer
		e.Write(&b)
		return b.String()
	}
	body := expose(at(0), 3)
	for _, want := range []string{
		"# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter\n",
		`container_cpu_usage_seconds_total{container="app",namespace="default",pod="we\"b"} 3 `,
		"\nresource_scrape_error 0\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %q:\n%s", want, body)
		}
	}

	h := newHarness("n1")
	h.pass(at(0), map[string]string{"n1": body})
	h.pass(at(1), map[string]string{"n1": expose(at(1), 3+7.5)}) // half a core
	got := podUsage(t, h.s.Store, "default", `we"b`)
	if got == nil || got.Nanocores != 500_000_000 || got.Bytes != 64<<20 || got.Window != interval {
		t.Errorf("pod we\"b = %+v, want half a core, 64 MiB over one interval", got)
	}
	if _, ok := h.s.Store.Pod("default", "half"); ok {
		t.Error("a pod whose container has no working set is listed")
	}
	n, ok := h.s.Store.Node("n1")
	if !ok || n.Usage.Cpu().MilliValue() != 1000 || n.Usage.Memory().Value() != 1<<30 {
		t.Errorf("node n1 = %+v, %v; want one core, 1 GiB", n.Usage, ok)
	}
}
