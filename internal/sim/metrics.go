package sim

import (
	"bytes"
	"time"

	"github.com/skiff-io/skiff/internal/resourcemetrics"
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

// writeResourceMetrics renders u as a kubelet's /metrics/resource
// (resourcemetrics.Exposition, the format skiff's kubelet writes too). The
// simulator never fails to read its own numbers, so resource_scrape_error
// is always 0; a pod's totals are its containers' sums.
func writeResourceMetrics(b *bytes.Buffer, u nodeUsage) {
	at := func(v float64) *resourcemetrics.Value { return &resourcemetrics.Value{V: v, At: u.at} }
	e := resourcemetrics.Exposition{
		Node: resourcemetrics.NodeUsage{CPUSeconds: at(u.cpuSeconds), MemoryBytes: at(float64(u.memoryBytes))},
		Pods: make([]resourcemetrics.PodUsage, 0, len(u.pods)),
	}
	for _, p := range u.pods {
		var cpu float64
		var mem uint64
		pu := resourcemetrics.PodUsage{Namespace: p.namespace, Name: p.name, Containers: make([]resourcemetrics.ContainerUsage, 0, len(p.containers))}
		for _, c := range p.containers {
			cpu += c.cpuSeconds
			mem += c.memoryBytes
			pu.Containers = append(pu.Containers, resourcemetrics.ContainerUsage{
				Name: c.name, Start: c.start, CPUSeconds: at(c.cpuSeconds), MemoryBytes: at(float64(c.memoryBytes)),
			})
		}
		pu.CPUSeconds, pu.MemoryBytes = at(cpu), at(float64(mem))
		e.Pods = append(e.Pods, pu)
	}
	e.Write(b)
}
