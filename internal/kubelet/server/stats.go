package server

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The labels the kubelet puts on every CRI container and sandbox; stats are
// matched to pods through them.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
)

// serveStatsSummary answers GET /stats/summary.
func (s *Server) serveStatsSummary(w http.ResponseWriter, r *http.Request) {
	sum, err := s.collectSummary(r.Context())
	if err != nil {
		writeRuntimeError(w, "list container stats", err)
		return
	}
	body, err := json.Marshal(sum)
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, fmt.Sprintf("encode summary: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// collectSummary reads the node from /proc and the pods from CRI. Pods
// appear when the runtime has stats for at least one of their containers.
// Missing sandbox stats are not an error: pod totals are then the sum of the
// containers'. The only error is ListContainerStats's, returned as is so
// that the caller can map its gRPC code.
func (s *Server) collectSummary(ctx context.Context) (*Summary, error) {
	containers, err := s.runtime.ListContainerStats(ctx, &runtimeapi.ContainerStatsFilter{})
	if err != nil {
		return nil, err
	}
	sandboxes, err := s.runtime.ListPodSandboxStats(ctx, &runtimeapi.PodSandboxStatsFilter{})
	if err != nil {
		if grpcstatus.Code(err) != codes.Unimplemented {
			s.log.Warn("list pod sandbox stats failed; summing container stats", "err", err)
		}
		sandboxes = nil
	}
	sum := &Summary{Node: s.nodeStats(), Pods: []PodStats{}}

	type podKey struct{ namespace, name string }
	byPod := map[podKey][]*runtimeapi.ContainerStats{}
	for _, c := range containers {
		l := c.GetAttributes().GetLabels()
		k := podKey{l[labelPodNamespace], l[labelPodName]}
		if k.name == "" {
			continue // not a kubelet container
		}
		byPod[k] = append(byPod[k], c)
	}
	sandboxByPod := map[podKey]*runtimeapi.PodSandboxStats{}
	for _, sb := range sandboxes {
		m := sb.GetAttributes().GetMetadata()
		sandboxByPod[podKey{m.GetNamespace(), m.GetName()}] = sb
	}

	seen := map[string]bool{}
	for _, pod := range s.pods.Pods() {
		k := podKey{pod.Namespace, pod.Name}
		ps := PodStats{
			PodRef:     PodReference{Name: pod.Name, Namespace: pod.Namespace, UID: string(pod.UID)},
			Containers: []ContainerStats{},
		}
		if pod.Status.StartTime != nil {
			ps.StartTime = *pod.Status.StartTime
		}
		current := currentContainers(pod)
		picked := map[string]*runtimeapi.ContainerStats{}
		for _, c := range byPod[k] {
			attrs := c.GetAttributes()
			if uid := attrs.GetLabels()[labelPodUID]; uid != "" && pod.UID != "" && uid != string(pod.UID) {
				continue // an earlier pod of the same name
			}
			name := cmp.Or(attrs.GetLabels()[labelContainerName], attrs.GetMetadata().GetName())
			cur := current[name]
			if want := cur.id; want != "" && want != attrs.GetId() {
				continue // an earlier instance of the container
			}
			if prev, ok := picked[name]; !ok || c.GetCpu().GetTimestamp() > prev.GetCpu().GetTimestamp() {
				picked[name] = c
			}
		}
		if len(picked) == 0 {
			continue
		}
		for name, c := range picked {
			seen[c.GetAttributes().GetId()] = true
			ps.Containers = append(ps.Containers, ContainerStats{
				Name:      name,
				StartTime: current[name].started,
				CPU:       s.cpuStats(c.GetAttributes().GetId(), c.GetCpu()),
				Memory:    memoryStats(c.GetMemory()),
			})
		}
		slices.SortFunc(ps.Containers, func(a, b ContainerStats) int { return strings.Compare(a.Name, b.Name) })
		if sb := sandboxByPod[k]; sb.GetLinux().GetCpu() != nil || sb.GetLinux().GetMemory() != nil {
			id := "sandbox/" + sb.GetAttributes().GetId()
			seen[id] = true
			ps.CPU = s.cpuStats(id, sb.GetLinux().GetCpu())
			ps.Memory = memoryStats(sb.GetLinux().GetMemory())
		} else {
			ps.CPU, ps.Memory = sumContainers(ps.Containers)
		}
		sum.Pods = append(sum.Pods, ps)
	}
	slices.SortFunc(sum.Pods, func(a, b PodStats) int {
		return cmp.Or(strings.Compare(a.PodRef.Namespace, b.PodRef.Namespace), strings.Compare(a.PodRef.Name, b.PodRef.Name))
	})
	seen[nodeRateKey] = true
	s.rates.prune(seen)
	return sum, nil
}

// containerInfo is what the pod's status says of a container's current
// instance.
type containerInfo struct {
	id      string // CRI ID, the "containerd://" scheme stripped
	started metav1.Time
}

func currentContainers(pod *v1.Pod) map[string]containerInfo {
	out := map[string]containerInfo{}
	for _, list := range [][]v1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for _, cs := range list {
			info := containerInfo{id: cs.ContainerID}
			if _, after, ok := strings.Cut(cs.ContainerID, "://"); ok {
				info.id = after
			}
			if cs.State.Running != nil {
				info.started = cs.State.Running.StartedAt
			}
			out[cs.Name] = info
		}
	}
	return out
}

// cpuStats converts a CRI CPU reading. When the runtime leaves out the rate
// (containerd computes it only for some platforms and versions), it is
// derived from this reading and the previous one of the same key.
func (s *Server) cpuStats(key string, c *runtimeapi.CpuUsage) *CPUStats {
	if c == nil {
		return nil
	}
	ts := time.Unix(0, c.GetTimestamp())
	out := &CPUStats{Time: metav1.NewTime(ts)}
	if v := c.GetUsageCoreNanoSeconds(); v != nil {
		out.UsageCoreNanoSeconds = ptr(v.GetValue())
	}
	if v := c.GetUsageNanoCores(); v != nil {
		out.UsageNanoCores = ptr(v.GetValue())
	} else if out.UsageCoreNanoSeconds != nil {
		out.UsageNanoCores = s.rates.rate(key, ts, *out.UsageCoreNanoSeconds)
	}
	return out
}

func memoryStats(m *runtimeapi.MemoryUsage) *MemoryStats {
	if m == nil {
		return nil
	}
	val := func(v *runtimeapi.UInt64Value) *uint64 {
		if v == nil {
			return nil
		}
		return ptr(v.GetValue())
	}
	return &MemoryStats{
		Time:            metav1.NewTime(time.Unix(0, m.GetTimestamp())),
		AvailableBytes:  val(m.GetAvailableBytes()),
		UsageBytes:      val(m.GetUsageBytes()),
		WorkingSetBytes: val(m.GetWorkingSetBytes()),
		RSSBytes:        val(m.GetRssBytes()),
		PageFaults:      val(m.GetPageFaults()),
		MajorPageFaults: val(m.GetMajorPageFaults()),
	}
}

// sumContainers totals the containers' CPU and memory for a pod whose
// sandbox has no stats of its own.
func sumContainers(cs []ContainerStats) (*CPUStats, *MemoryStats) {
	var cpu *CPUStats
	var mem *MemoryStats
	add := func(dst **uint64, v *uint64) {
		if v == nil {
			return
		}
		if *dst == nil {
			*dst = ptr(uint64(0))
		}
		**dst += *v
	}
	for _, c := range cs {
		if c.CPU != nil {
			if cpu == nil {
				cpu = &CPUStats{}
			}
			if c.CPU.Time.After(cpu.Time.Time) {
				cpu.Time = c.CPU.Time
			}
			add(&cpu.UsageNanoCores, c.CPU.UsageNanoCores)
			add(&cpu.UsageCoreNanoSeconds, c.CPU.UsageCoreNanoSeconds)
		}
		if c.Memory != nil {
			if mem == nil {
				mem = &MemoryStats{}
			}
			if c.Memory.Time.After(mem.Time.Time) {
				mem.Time = c.Memory.Time
			}
			add(&mem.UsageBytes, c.Memory.UsageBytes)
			add(&mem.WorkingSetBytes, c.Memory.WorkingSetBytes)
			add(&mem.RSSBytes, c.Memory.RSSBytes)
		}
	}
	return cpu, mem
}

// rateCache remembers the last cumulative CPU reading per key to turn the
// next one into a rate.
type rateCache struct {
	mu   sync.Mutex
	last map[string]cpuSample
}

type cpuSample struct {
	at    time.Time
	total uint64
	rate  *uint64 // computed from the sample before; reused for a repeated reading
}

// rate records (at, total) for key and returns the rate since the previous
// reading, or nil when there is none or time did not advance.
func (c *rateCache) rate(key string, at time.Time, total uint64) *uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[string]cpuSample{}
	}
	prev, ok := c.last[key]
	if ok && !at.After(prev.at) {
		return prev.rate // the runtime's cached reading again
	}
	next := cpuSample{at: at, total: total}
	if ok && total >= prev.total {
		next.rate = ptr(uint64(float64(total-prev.total) / at.Sub(prev.at).Seconds()))
	}
	c.last[key] = next
	return next.rate
}

// prune forgets keys not in keep, so that removed containers do not pile up.
func (c *rateCache) prune(keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.last {
		if !keep[k] {
			delete(c.last, k)
		}
	}
}

func ptr[T any](v T) *T { return &v }
