package sim

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// nodeUsage is what one node's /metrics/resource reports, read at one
// instant.
type nodeUsage struct {
	at time.Time
	// cpuSeconds is the node's cumulative CPU time in core-seconds,
	// memoryBytes its working set.
	cpuSeconds  float64
	memoryBytes uint64
	pods        []podUsage
}

type podUsage struct {
	namespace, name string
	containers      []containerUsage
}

type containerUsage struct {
	name        string
	start       time.Time
	cpuSeconds  float64 // cumulative since start, core-seconds
	memoryBytes uint64
}

// writeResourceMetrics renders u as internal/kubelet/server's
// serveResourceMetrics does (the kubelet's /metrics/resource): the same
// families in the same order, HELP and TYPE lines, labels and millisecond
// timestamps. The simulator never fails to read its own numbers, so
// resource_scrape_error is always 0. That writer is not imported: the
// kubelet's server package would bring the kubelet's dependencies into
// every simulator, for forty lines.
func writeResourceMetrics(b *bytes.Buffer, u nodeUsage) {
	m := metricWriter{b}
	m.family("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the container in core-seconds")
	for _, p := range u.pods {
		for _, c := range p.containers {
			m.sample("container_cpu_usage_seconds_total", containerLabels(p, c), c.cpuSeconds, u.at)
		}
	}
	m.family("container_memory_working_set_bytes", "gauge", "Current working set of the container in bytes")
	for _, p := range u.pods {
		for _, c := range p.containers {
			m.sample("container_memory_working_set_bytes", containerLabels(p, c), float64(c.memoryBytes), u.at)
		}
	}
	m.family("container_start_time_seconds", "gauge", "Start time of the container since unix epoch in seconds")
	for _, p := range u.pods {
		for _, c := range p.containers {
			m.sample("container_start_time_seconds", containerLabels(p, c), float64(c.start.UnixNano())/1e9, c.start)
		}
	}
	m.family("node_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the node in core-seconds")
	m.sample("node_cpu_usage_seconds_total", nil, u.cpuSeconds, u.at)
	m.family("node_memory_working_set_bytes", "gauge", "Current working set of the node in bytes")
	m.sample("node_memory_working_set_bytes", nil, float64(u.memoryBytes), u.at)
	m.family("pod_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the pod in core-seconds")
	for _, p := range u.pods {
		var cpu float64
		for _, c := range p.containers {
			cpu += c.cpuSeconds
		}
		m.sample("pod_cpu_usage_seconds_total", podLabels(p), cpu, u.at)
	}
	m.family("pod_memory_working_set_bytes", "gauge", "Current working set of the pod in bytes")
	for _, p := range u.pods {
		var mem uint64
		for _, c := range p.containers {
			mem += c.memoryBytes
		}
		m.sample("pod_memory_working_set_bytes", podLabels(p), float64(mem), u.at)
	}
	m.family("resource_scrape_error", "gauge", "1 if there was an error while getting container metrics, 0 otherwise")
	m.sample("resource_scrape_error", nil, 0, time.Time{})
}

// containerLabels and podLabels are upstream's label sets, sorted by name
// as the Prometheus client writes them.
func containerLabels(p podUsage, c containerUsage) [][2]string {
	return [][2]string{{"container", c.name}, {"namespace", p.namespace}, {"pod", p.name}}
}

func podLabels(p podUsage) [][2]string {
	return [][2]string{{"namespace", p.namespace}, {"pod", p.name}}
}

// metricWriter writes the Prometheus text exposition format.
type metricWriter struct{ b *bytes.Buffer }

func (m metricWriter) family(name, typ, help string) {
	m.b.WriteString("# HELP " + name + " [STABLE] " + help + "\n# TYPE " + name + " " + typ + "\n")
}

// sample writes one line; a zero at leaves out the timestamp.
func (m metricWriter) sample(name string, labels [][2]string, v float64, at time.Time) {
	m.b.WriteString(name)
	if len(labels) > 0 {
		m.b.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				m.b.WriteByte(',')
			}
			m.b.WriteString(l[0])
			m.b.WriteString(`="`)
			m.b.WriteString(labelEscaper.Replace(l[1]))
			m.b.WriteByte('"')
		}
		m.b.WriteByte('}')
	}
	m.b.WriteByte(' ')
	m.b.Write(strconv.AppendFloat(m.b.AvailableBuffer(), v, 'g', -1, 64))
	if !at.IsZero() {
		m.b.WriteByte(' ')
		m.b.Write(strconv.AppendInt(m.b.AvailableBuffer(), at.UnixMilli(), 10))
	}
	m.b.WriteByte('\n')
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
