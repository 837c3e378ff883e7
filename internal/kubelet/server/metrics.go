package server

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serveResourceMetrics answers GET /metrics/resource in the Prometheus text
// format with upstream's metric names and labels. It is built from the same
// reading as /stats/summary; when the runtime cannot be read the node
// metrics are still served and resource_scrape_error is 1.
func (s *Server) serveResourceMetrics(w http.ResponseWriter, r *http.Request) {
	sum, err := s.collectSummary(r.Context())
	scrapeErr := 0.0
	if err != nil {
		s.log.Warn("collect resource metrics", "err", err)
		sum = &Summary{Node: s.nodeStats()}
		scrapeErr = 1
	}
	var b bytes.Buffer
	m := metricWriter{&b}

	m.family("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the container in core-seconds")
	for _, p := range sum.Pods {
		for _, c := range p.Containers {
			if c.CPU != nil && c.CPU.UsageCoreNanoSeconds != nil {
				m.sample("container_cpu_usage_seconds_total", containerLabels(p, c), seconds(*c.CPU.UsageCoreNanoSeconds), c.CPU.Time.Time)
			}
		}
	}
	m.family("container_memory_working_set_bytes", "gauge", "Current working set of the container in bytes")
	for _, p := range sum.Pods {
		for _, c := range p.Containers {
			if c.Memory != nil && c.Memory.WorkingSetBytes != nil {
				m.sample("container_memory_working_set_bytes", containerLabels(p, c), float64(*c.Memory.WorkingSetBytes), c.Memory.Time.Time)
			}
		}
	}
	m.family("container_start_time_seconds", "gauge", "Start time of the container since unix epoch in seconds")
	for _, p := range sum.Pods {
		for _, c := range p.Containers {
			if !c.StartTime.IsZero() {
				m.sample("container_start_time_seconds", containerLabels(p, c), float64(c.StartTime.UnixNano())/1e9, c.StartTime.Time)
			}
		}
	}
	m.family("node_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the node in core-seconds")
	if c := sum.Node.CPU; c != nil && c.UsageCoreNanoSeconds != nil {
		m.sample("node_cpu_usage_seconds_total", nil, seconds(*c.UsageCoreNanoSeconds), c.Time.Time)
	}
	m.family("node_memory_working_set_bytes", "gauge", "Current working set of the node in bytes")
	if mem := sum.Node.Memory; mem != nil && mem.WorkingSetBytes != nil {
		m.sample("node_memory_working_set_bytes", nil, float64(*mem.WorkingSetBytes), mem.Time.Time)
	}
	m.family("pod_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the pod in core-seconds")
	for _, p := range sum.Pods {
		if p.CPU != nil && p.CPU.UsageCoreNanoSeconds != nil {
			m.sample("pod_cpu_usage_seconds_total", podLabels(p), seconds(*p.CPU.UsageCoreNanoSeconds), p.CPU.Time.Time)
		}
	}
	m.family("pod_memory_working_set_bytes", "gauge", "Current working set of the pod in bytes")
	for _, p := range sum.Pods {
		if p.Memory != nil && p.Memory.WorkingSetBytes != nil {
			m.sample("pod_memory_working_set_bytes", podLabels(p), float64(*p.Memory.WorkingSetBytes), p.Memory.Time.Time)
		}
	}
	m.family("resource_scrape_error", "gauge", "1 if there was an error while getting container metrics, 0 otherwise")
	m.sample("resource_scrape_error", nil, scrapeErr, time.Time{})

	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

func seconds(ns uint64) float64 { return float64(ns) / 1e9 }

// containerLabels and podLabels are upstream's label sets, in the order the
// Prometheus client writes them (sorted by name).
func containerLabels(p PodStats, c ContainerStats) [][2]string {
	return [][2]string{{"container", c.Name}, {"namespace", p.PodRef.Namespace}, {"pod", p.PodRef.Name}}
}

func podLabels(p PodStats) [][2]string {
	return [][2]string{{"namespace", p.PodRef.Namespace}, {"pod", p.PodRef.Name}}
}

// metricWriter writes the Prometheus text exposition format.
type metricWriter struct{ b *bytes.Buffer }

func (m metricWriter) family(name, typ, help string) {
	fmt.Fprintf(m.b, "# HELP %s [STABLE] %s\n# TYPE %s %s\n", name, help, name, typ)
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
			fmt.Fprintf(m.b, "%s=\"%s\"", l[0], labelEscaper.Replace(l[1]))
		}
		m.b.WriteByte('}')
	}
	m.b.WriteByte(' ')
	m.b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	if !at.IsZero() {
		m.b.WriteByte(' ')
		m.b.WriteString(strconv.FormatInt(at.UnixMilli(), 10))
	}
	m.b.WriteByte('\n')
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
