package server

import (
	"bytes"
	"net/http"

	"github.com/skiff-io/skiff/internal/resourcemetrics"
)

// serveResourceMetrics answers GET /metrics/resource in the Prometheus text
// format with upstream's metric names and labels (resourcemetrics.Exposition).
// It is built from the same reading as /stats/summary; when the runtime
// cannot be read the node metrics are still served and resource_scrape_error
// is 1.
func (s *Server) serveResourceMetrics(w http.ResponseWriter, r *http.Request) {
	sum, err := s.collectSummary(r.Context())
	e := resourcemetrics.Exposition{}
	if err != nil {
		s.log.Warn("collect resource metrics", "err", err)
		sum = &Summary{Node: s.nodeStats()}
		e.ScrapeError = true
	}
	e.Node = resourcemetrics.NodeUsage{CPUSeconds: cpuValue(sum.Node.CPU), MemoryBytes: memoryValue(sum.Node.Memory)}
	for _, p := range sum.Pods {
		pu := resourcemetrics.PodUsage{
			Namespace: p.PodRef.Namespace, Name: p.PodRef.Name,
			CPUSeconds: cpuValue(p.CPU), MemoryBytes: memoryValue(p.Memory),
		}
		for _, c := range p.Containers {
			pu.Containers = append(pu.Containers, resourcemetrics.ContainerUsage{
				Name: c.Name, Start: c.StartTime.Time,
				CPUSeconds: cpuValue(c.CPU), MemoryBytes: memoryValue(c.Memory),
			})
		}
		e.Pods = append(e.Pods, pu)
	}
	var b bytes.Buffer
	e.Write(&b)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// cpuValue is the cumulative CPU time of c in core-seconds, nil when
// unknown.
func cpuValue(c *CPUStats) *resourcemetrics.Value {
	if c == nil || c.UsageCoreNanoSeconds == nil {
		return nil
	}
	return &resourcemetrics.Value{V: float64(*c.UsageCoreNanoSeconds) / 1e9, At: c.Time.Time}
}

// memoryValue is the working set of m in bytes, nil when unknown.
func memoryValue(m *MemoryStats) *resourcemetrics.Value {
	if m == nil || m.WorkingSetBytes == nil {
		return nil
	}
	return &resourcemetrics.Value{V: float64(*m.WorkingSetBytes), At: m.Time.Time}
}
