package sim

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWriteResourceMetrics(t *testing.T) {
	at := time.UnixMilli(1_767_225_600_123)
	start := time.Unix(1_767_225_000, 500_000_000)
	u := nodeUsage{
		at:          at,
		cpuSeconds:  12.5,
		memoryBytes: 3 << 20,
		pods: []podUsage{
			{namespace: "default", name: "web", containers: []containerUsage{
				{name: "app", start: start, cpuSeconds: 150.25, memoryBytes: 1 << 20},
				{name: "log", start: start, cpuSeconds: 0, memoryBytes: 2 << 20},
			}},
			{namespace: "x", name: `we"ird\`, containers: []containerUsage{
				{name: "c", start: start, cpuSeconds: 1e-3, memoryBytes: 0},
			}},
		},
	}
	var b bytes.Buffer
	writeResourceMetrics(&b, u)
	want := `# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="app",namespace="default",pod="web"} 150.25 1767225600123
container_cpu_usage_seconds_total{container="log",namespace="default",pod="web"} 0 1767225600123
container_cpu_usage_seconds_total{container="c",namespace="x",pod="we\"ird\\"} 0.001 1767225600123
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="app",namespace="default",pod="web"} 1.048576e+06 1767225600123
container_memory_working_set_bytes{container="log",namespace="default",pod="web"} 2.097152e+06 1767225600123
container_memory_working_set_bytes{container="c",namespace="x",pod="we\"ird\\"} 0 1767225600123
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="app",namespace="default",pod="web"} 1.7672250005e+09 1767225000500
container_start_time_seconds{container="log",namespace="default",pod="web"} 1.7672250005e+09 1767225000500
container_start_time_seconds{container="c",namespace="x",pod="we\"ird\\"} 1.7672250005e+09 1767225000500
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 12.5 1767225600123
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 3.145728e+06 1767225600123
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="default",pod="web"} 150.25 1767225600123
pod_cpu_usage_seconds_total{namespace="x",pod="we\"ird\\"} 0.001 1767225600123
# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes
# TYPE pod_memory_working_set_bytes gauge
pod_memory_working_set_bytes{namespace="default",pod="web"} 3.145728e+06 1767225600123
pod_memory_working_set_bytes{namespace="x",pod="we\"ird\\"} 0 1767225600123
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 0
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}

	b.Reset()
	writeResourceMetrics(&b, nodeUsage{at: at})
	if got := b.String(); !bytes.Contains([]byte(got), []byte("\nnode_cpu_usage_seconds_total 0 1767225600123\n")) ||
		bytes.Contains([]byte(got), []byte("container_cpu_usage_seconds_total{")) {
		t.Errorf("node without pods:\n%s", got)
	}
}
