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

// collectSummary reads the node from /proc and the pods from CRI
// (readPods). Pods appear when the runtime has stats for at least one of
// their containers. Missing sandbox stats are not an error: pod totals are
// then the sum of the containers'. The only error is ListContainerStats's,
// returned as is so that the caller can map its gRPC code.
func (s *Server) collectSummary(ctx context.Context) (*Summary, error) {
	pods, err := s.readPods(ctx)
	if err != nil {
		return nil, err
	}
	sum := &Summary{Node: s.nodeStats(), Pods: []PodStats{}}
	seen := map[string]bool{nodeRateKey: true}
	for _, pr := range pods {
		if len(pr.containers) == 0 {
			continue
		}
		pod := pr.pod
		ps := PodStats{
			PodRef:     PodReference{Name: pod.Name, Namespace: pod.Namespace, UID: string(pod.UID)},
			Containers: []ContainerStats{},
		}
		if pod.Status.StartTime != nil {
			ps.StartTime = *pod.Status.StartTime
		}
		for name, c := range pr.containers {
			seen[c.GetAttributes().GetId()] = true
			ps.Containers = append(ps.Containers, ContainerStats{
				Name:      name,
				StartTime: pr.current[name].started,
				CPU:       s.cpuStats(c.GetAttributes().GetId(), c.GetCpu()),
				Memory:    memoryStats(c.GetMemory()),
			})
		}
		slices.SortFunc(ps.Containers, func(a, b ContainerStats) int { return strings.Compare(a.Name, b.Name) })
		if sb := pr.sandbox; sb.GetLinux().GetCpu() != nil || sb.GetLinux().GetMemory() != nil {
			id := "sandbox/" + sb.GetAttributes().GetId()
			seen[id] = true
			ps.CPU = s.cpuStats(id, sb.GetLinux().GetCpu())
			ps.Memory = memoryStats(sb.GetLinux().GetMemory())
		} else {
			ps.CPU, ps.Memory = sumContainers(ps.Containers)
		}
		sum.Pods = append(sum.Pods, ps)
	}
	s.rates.prune(seen)
	return sum, nil
}

// podReading is one pod's CRI stats, matched to the pod as the kubelet
// knows it.
type podReading struct {
	pod *v1.Pod
	// current is what the pod's status says of each container, by name.
	current map[string]containerInfo
	// containers are the stats of the containers' current instances, by
	// container name.
	containers map[string]*runtimeapi.ContainerStats
	// sandbox is nil when the runtime has no stats for the pod's sandbox.
	sandbox *runtimeapi.PodSandboxStats
}

// readPods asks the runtime for container and sandbox stats, once each,
// and matches them to the pods on this node, sorted by namespace and name.
// A pod is left out when the runtime has no stats for it at all. Stats of
// earlier instances of a container, of an earlier pod of the same name and
// of containers the kubelet did not create are ignored. A runtime without
// sandbox stats is not an error (containerd before 1.6 answers
// Unimplemented); the error is ListContainerStats's, as is.
//
// The sandbox filter is empty but not nil on purpose: containerd 1.6 then
// leaves out sandboxes that are not ready, while without a filter it fails
// the whole call on the first sandbox whose cgroup is gone.
func (s *Server) readPods(ctx context.Context) ([]podReading, error) {
	containers, err := s.runtime.ListContainerStats(ctx, &runtimeapi.ContainerStatsFilter{})
	if err != nil {
		return nil, err
	}
	sandboxes, err := s.runtime.ListPodSandboxStats(ctx, &runtimeapi.PodSandboxStatsFilter{})
	if err != nil {
		if grpcstatus.Code(err) != codes.Unimplemented {
			s.log.Warn("list pod sandbox stats failed; going on without them", "err", err)
		}
		sandboxes = nil
	}

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
	sandboxByPod := map[podKey][]*runtimeapi.PodSandboxStats{}
	for _, sb := range sandboxes {
		m := sb.GetAttributes().GetMetadata()
		k := podKey{m.GetNamespace(), m.GetName()}
		sandboxByPod[k] = append(sandboxByPod[k], sb)
	}

	var out []podReading
	for _, pod := range s.pods.Pods() {
		k := podKey{pod.Namespace, pod.Name}
		pr := podReading{pod: pod, current: currentContainers(pod), containers: map[string]*runtimeapi.ContainerStats{}}
		for _, c := range byPod[k] {
			attrs := c.GetAttributes()
			if !samePod(attrs.GetLabels()[labelPodUID], pod) {
				continue // an earlier pod of the same name
			}
			name := cmp.Or(attrs.GetLabels()[labelContainerName], attrs.GetMetadata().GetName())
			if want := pr.current[name].id; want != "" && want != attrs.GetId() {
				continue // an earlier instance of the container
			}
			if prev, ok := pr.containers[name]; !ok || c.GetCpu().GetTimestamp() > prev.GetCpu().GetTimestamp() {
				pr.containers[name] = c
			}
		}
		for _, sb := range sandboxByPod[k] {
			if samePod(sb.GetAttributes().GetMetadata().GetUid(), pod) {
				pr.sandbox = sb
			}
		}
		if len(pr.containers) == 0 && pr.sandbox == nil {
			continue
		}
		out = append(out, pr)
	}
	slices.SortFunc(out, func(a, b podReading) int {
		return cmp.Or(strings.Compare(a.pod.Namespace, b.pod.Namespace), strings.Compare(a.pod.Name, b.pod.Name))
	})
	return out, nil
}

// samePod reports whether a runtime object labelled with pod UID uid
// belongs to pod; an object or pod without a UID is taken as the pod's.
func samePod(uid string, pod *v1.Pod) bool {
	return uid == "" || pod.UID == "" || uid == string(pod.UID)
}

// containerInfo is what the pod's status says of a container's current
// instance.
type containerInfo struct {
	id      string // CRI ID, the "containerd://" scheme stripped
	image   string
	started metav1.Time
}

func currentContainers(pod *v1.Pod) map[string]containerInfo {
	out := map[string]containerInfo{}
	for _, list := range [][]v1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for _, cs := range list {
			info := containerInfo{id: cs.ContainerID, image: cs.Image}
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
