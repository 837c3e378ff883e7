package resourcemetrics

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// Exposition is one answer of a kubelet's GET /metrics/resource: what the
// Scraper reads, and what skiff's kubelet (internal/kubelet/server) and
// simulated nodes (internal/sim) write with Write, so that the three agree
// on one format.
type Exposition struct {
	Node NodeUsage
	Pods []PodUsage
	// ScrapeError is resource_scrape_error: the runtime could not be read
	// and only the node's values are there.
	ScrapeError bool
}

// Value is one sample. A zero At writes no timestamp.
type Value struct {
	V  float64
	At time.Time
}

// NodeUsage is the node's cumulative CPU time (core-seconds) and working
// set (bytes); nil values are left out.
type NodeUsage struct {
	CPUSeconds, MemoryBytes *Value
}

// PodUsage is one pod's totals and its containers'.
type PodUsage struct {
	Namespace, Name         string
	CPUSeconds, MemoryBytes *Value
	Containers              []ContainerUsage
}

// ContainerUsage is one container's cumulative CPU time, working set and
// start; nil values and a zero Start are left out.
type ContainerUsage struct {
	Name                    string
	Start                   time.Time
	CPUSeconds, MemoryBytes *Value
}

// Write appends e to b in the Prometheus text format with upstream
// kubelet's family names, help texts, label names (sorted, as the
// Prometheus client writes them) and millisecond timestamps.
func (e *Exposition) Write(b *bytes.Buffer) {
	w := textWriter{b}
	containers := func(name, typ, help string, value func(c *ContainerUsage) *Value) {
		w.family(name, typ, help)
		for i := range e.Pods {
			p := &e.Pods[i]
			for j := range p.Containers {
				c := &p.Containers[j]
				if v := value(c); v != nil {
					w.sample(name, [][2]string{{"container", c.Name}, {"namespace", p.Namespace}, {"pod", p.Name}}, *v)
				}
			}
		}
	}
	pods := func(name, typ, help string, value func(p *PodUsage) *Value) {
		w.family(name, typ, help)
		for i := range e.Pods {
			p := &e.Pods[i]
			if v := value(p); v != nil {
				w.sample(name, [][2]string{{"namespace", p.Namespace}, {"pod", p.Name}}, *v)
			}
		}
	}
	node := func(name, typ, help string, v *Value) {
		w.family(name, typ, help)
		if v != nil {
			w.sample(name, nil, *v)
		}
	}
	containers("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the container in core-seconds",
		func(c *ContainerUsage) *Value { return c.CPUSeconds })
	containers("container_memory_working_set_bytes", "gauge", "Current working set of the container in bytes",
		func(c *ContainerUsage) *Value { return c.MemoryBytes })
	containers("container_start_time_seconds", "gauge", "Start time of the container since unix epoch in seconds",
		func(c *ContainerUsage) *Value {
			if c.Start.IsZero() {
				return nil
			}
			return &Value{V: float64(c.Start.UnixNano()) / 1e9, At: c.Start}
		})
	node("node_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the node in core-seconds", e.Node.CPUSeconds)
	node("node_memory_working_set_bytes", "gauge", "Current working set of the node in bytes", e.Node.MemoryBytes)
	pods("pod_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the pod in core-seconds",
		func(p *PodUsage) *Value { return p.CPUSeconds })
	pods("pod_memory_working_set_bytes", "gauge", "Current working set of the pod in bytes",
		func(p *PodUsage) *Value { return p.MemoryBytes })
	scrapeErr := Value{}
	if e.ScrapeError {
		scrapeErr.V = 1
	}
	node("resource_scrape_error", "gauge", "1 if there was an error while getting container metrics, 0 otherwise", &scrapeErr)
}

// textWriter writes the Prometheus text exposition format.
type textWriter struct{ b *bytes.Buffer }

func (w textWriter) family(name, typ, help string) {
	w.b.WriteString("# HELP " + name + " [STABLE] " + help + "\n# TYPE " + name + " " + typ + "\n")
}

func (w textWriter) sample(name string, labels [][2]string, v Value) {
	w.b.WriteString(name)
	if len(labels) > 0 {
		w.b.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				w.b.WriteByte(',')
			}
			w.b.WriteString(l[0])
			w.b.WriteString(`="`)
			w.b.WriteString(labelEscaper.Replace(l[1]))
			w.b.WriteByte('"')
		}
		w.b.WriteByte('}')
	}
	w.b.WriteByte(' ')
	w.b.Write(strconv.AppendFloat(w.b.AvailableBuffer(), v.V, 'g', -1, 64))
	if !v.At.IsZero() {
		w.b.WriteByte(' ')
		w.b.Write(strconv.AppendInt(w.b.AvailableBuffer(), v.At.UnixMilli(), 10))
	}
	w.b.WriteByte('\n')
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
