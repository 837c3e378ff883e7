package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skiff-io/skiff/internal/kubelet/cgroup"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// GET /metrics/cadvisor serves container metrics under the names, help
// texts and labels upstream's kubelet serves from its embedded cAdvisor,
// built per scrape from one ListContainerStats and one ListPodSandboxStats
// call (readPods) and /proc. skiff has no cAdvisor; what CRI and /proc do
// not say is left out rather than made up:
//
//   - Every container series has upstream's labels container, id, image,
//     name, namespace and pod; id is the cgroup path the kubelet gives runc
//     (/kubepods/<qos>/pod<uid>/<container id>) and name the container ID,
//     as cAdvisor names containerd's containers.
//   - A pod's own cgroup (container="", image="", name="", id its pod
//     cgroup) carries the sandbox's CPU and memory; the pause container
//     (container="", name the sandbox ID, id <pod cgroup>/<sandbox ID>,
//     image the pause image) carries the network series, labelled by
//     interface, as on upstream nodes running containerd. The node's root
//     cgroup is id="/", from /proc.
//   - Network counters are read, as cAdvisor reads them, from
//     /proc/<pause pid>/net/dev (every interface but lo: bytes, packets,
//     errors, drops); when the runtime does not name the pause process,
//     from CRI's sandbox network stats, which carry bytes and errors only
//     (containerd 1.6: eth0 alone). Host-network pods have none.
//   - Samples carry the runtime's reading time as their timestamp, as
//     cAdvisor's do; start times, limits and machine facts carry none.
//
// Differences from upstream: only the metrics below exist; the pause
// container has no CPU or memory series (containerd does not report it in
// ListContainerStats); container_fs_usage_bytes covers the writable layer
// only and its device label is the runtime's filesystem mountpoint, not a
// block device; container_spec_memory_limit_bytes is read from the pod
// spec and exists for containers only.

// cadvisorLabels are the labels of every container series, in upstream's
// order.
var cadvisorLabels = []string{"container", "id", "image", "name", "namespace", "pod"}

func cadvisorDesc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append(slices.Clone(cadvisorLabels), extra...), nil)
}

// machineLabels identify the machine on machine_* series, as cAdvisor's.
var machineLabels = []string{"machine_id", "system_uuid", "boot_id"}

// Upstream's help texts, word for word.
var (
	descCPUUsage    = cadvisorDesc("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", "cpu")
	descMemUsage    = cadvisorDesc("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed")
	descMemWS       = cadvisorDesc("container_memory_working_set_bytes", "Current working set in bytes.")
	descMemRSS      = cadvisorDesc("container_memory_rss", "Size of RSS in bytes.")
	descFSUsage     = cadvisorDesc("container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", "device")
	descStartTime   = cadvisorDesc("container_start_time_seconds", "Start time of the container since unix epoch in seconds.")
	descMemLimit    = cadvisorDesc("container_spec_memory_limit_bytes", "Memory limit for the container.")
	descRxBytes     = cadvisorDesc("container_network_receive_bytes_total", "Cumulative count of bytes received", "interface")
	descRxPackets   = cadvisorDesc("container_network_receive_packets_total", "Cumulative count of packets received", "interface")
	descRxErrors    = cadvisorDesc("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving", "interface")
	descRxDropped   = cadvisorDesc("container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving", "interface")
	descTxBytes     = cadvisorDesc("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", "interface")
	descTxPackets   = cadvisorDesc("container_network_transmit_packets_total", "Cumulative count of packets transmitted", "interface")
	descTxErrors    = cadvisorDesc("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting", "interface")
	descTxDropped   = cadvisorDesc("container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting", "interface")
	descScrapeError = prometheus.NewDesc("container_scrape_error", "1 if there was an error while getting container metrics, 0 otherwise", nil, nil)
	descCores       = prometheus.NewDesc("machine_cpu_cores", "Number of logical CPU cores.", machineLabels, nil)
	descMemory      = prometheus.NewDesc("machine_memory_bytes", "Amount of memory installed on the machine.", machineLabels, nil)
)

// Where the machine's identity is read, as cAdvisor reads it; the boot ID
// is under the server's procRoot.
const (
	machineIDFile   = "/etc/machine-id"
	productUUIDFile = "/sys/class/dmi/id/product_uuid"
)

// serveCadvisorMetrics answers GET /metrics/cadvisor. When the runtime
// cannot be read, the machine and node series are still served and
// container_scrape_error is 1, as cAdvisor does.
func (s *Server) serveCadvisorMetrics(w http.ResponseWriter, r *http.Request) {
	var m metricSet
	s.addMachine(&m)
	s.addRoot(&m)
	pods, err := s.readPods(r.Context())
	if err != nil {
		s.log.Warn("collect cadvisor metrics", "err", err)
		m.add(descScrapeError, prometheus.GaugeValue, 1, time.Time{})
	} else {
		m.add(descScrapeError, prometheus.GaugeValue, 0, time.Time{})
		seen := map[string]bool{}
		for _, pr := range pods {
			s.addPod(r.Context(), &m, pr, seen)
		}
		s.sandboxes.prune(seen)
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(m); err != nil {
		writeStatus(w, http.StatusInternalServerError, fmt.Sprintf("register cadvisor metrics: %v", err))
		return
	}
	s.promHandler(reg).ServeHTTP(w, r)
}

// promHandler serves g in the format the client accepts (text, or
// OpenMetrics when asked), reporting what it could gather when part of it
// fails.
func (s *Server) promHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:          promLogger{s},
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// promLogger is promhttp's error log on the server's logger.
type promLogger struct{ s *Server }

func (l promLogger) Println(v ...any) { l.s.log.Warn("serving metrics", "err", fmt.Sprint(v...)) }

// metricSet is a scrape's worth of constant metrics: an unchecked
// prometheus.Collector (it describes nothing) registered on a registry made
// for the one request.
type metricSet struct{ metrics []prometheus.Metric }

func (metricSet) Describe(chan<- *prometheus.Desc) {}

func (m metricSet) Collect(ch chan<- prometheus.Metric) {
	for _, x := range m.metrics {
		ch <- x
	}
}

// add records one sample, with an explicit timestamp unless at is zero.
// Label values that the exposition cannot carry drop the sample.
func (m *metricSet) add(desc *prometheus.Desc, typ prometheus.ValueType, v float64, at time.Time, labels ...string) {
	x, err := prometheus.NewConstMetric(desc, typ, v, labels...)
	if err != nil {
		return
	}
	if !at.IsZero() {
		x = prometheus.NewMetricWithTimestamp(at, x)
	}
	m.metrics = append(m.metrics, x)
}

// addUsage records a cgroup's CPU and memory, whichever the runtime gave.
func (m *metricSet) addUsage(labels []string, cpu *runtimeapi.CpuUsage, mem *runtimeapi.MemoryUsage) {
	if v := cpu.GetUsageCoreNanoSeconds(); v != nil {
		m.add(descCPUUsage, prometheus.CounterValue, float64(v.GetValue())/1e9, nanos(cpu.GetTimestamp()), withLabel(labels, "total")...)
	}
	at := nanos(mem.GetTimestamp())
	for _, g := range []struct {
		desc *prometheus.Desc
		v    *runtimeapi.UInt64Value
	}{{descMemWS, mem.GetWorkingSetBytes()}, {descMemUsage, mem.GetUsageBytes()}, {descMemRSS, mem.GetRssBytes()}} {
		if g.v != nil {
			m.add(g.desc, prometheus.GaugeValue, float64(g.v.GetValue()), at, labels...)
		}
	}
}

// withLabel is labels and one more, labels untouched.
func withLabel(labels []string, v string) []string {
	return append(slices.Clone(labels), v)
}

// nanos is a CRI timestamp as a time; zero stays zero (no timestamp).
func nanos(ns int64) time.Time {
	if ns <= 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// addMachine records machine_cpu_cores and machine_memory_bytes from /proc.
func (s *Server) addMachine(m *metricSet) {
	ids := []string{
		readID(machineIDFile),
		readID(productUUIDFile),
		readID(filepath.Join(s.procRoot, "sys", "kernel", "random", "boot_id")),
	}
	if st, err := readProcStat(filepath.Join(s.procRoot, "stat")); err == nil {
		m.add(descCores, prometheus.GaugeValue, float64(st.cpus), time.Time{}, ids...)
	}
	if mem, err := readMeminfo(filepath.Join(s.procRoot, "meminfo")); err == nil {
		m.add(descMemory, prometheus.GaugeValue, float64(mem["MemTotal"]), time.Time{}, ids...)
	}
}

// readID is a one-line identity file, "" when it cannot be read (the
// product UUID is readable by root only).
func readID(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// addRoot records the node as the root cgroup, id="/", from /proc.
func (s *Server) addRoot(m *metricSet) {
	n := s.nodeStats()
	labels := []string{"", "/", "", "", "", ""}
	if c := n.CPU; c != nil && c.UsageCoreNanoSeconds != nil {
		m.add(descCPUUsage, prometheus.CounterValue, float64(*c.UsageCoreNanoSeconds)/1e9, c.Time.Time, withLabel(labels, "total")...)
	}
	if mem := n.Memory; mem != nil {
		m.add(descMemWS, prometheus.GaugeValue, float64(*mem.WorkingSetBytes), mem.Time.Time, labels...)
		m.add(descMemUsage, prometheus.GaugeValue, float64(*mem.UsageBytes), mem.Time.Time, labels...)
	}
}

// addPod records a pod's containers, its cgroup and its pause container,
// and marks its sandbox in seen.
func (s *Server) addPod(ctx context.Context, m *metricSet, pr podReading, seen map[string]bool) {
	pod := pr.pod
	cg := cgroup.PodParent(s.cgroupRoot, pod) // upstream's cAdvisor names the pod's series by it
	limits := memoryLimits(pod)
	for name, c := range pr.containers {
		id := c.GetAttributes().GetId()
		cur := pr.current[name]
		labels := []string{name, cg + "/" + id, cur.image, id, pod.Namespace, pod.Name}
		m.addUsage(labels, c.GetCpu(), c.GetMemory())
		if wl := c.GetWritableLayer(); wl.GetUsedBytes() != nil {
			m.add(descFSUsage, prometheus.GaugeValue, float64(wl.GetUsedBytes().GetValue()), nanos(wl.GetTimestamp()),
				withLabel(labels, wl.GetFsId().GetMountpoint())...)
		}
		if !cur.started.IsZero() {
			m.add(descStartTime, prometheus.GaugeValue, float64(cur.started.Unix()), time.Time{}, labels...)
		}
		if limit, ok := limits[name]; ok {
			m.add(descMemLimit, prometheus.GaugeValue, limit, time.Time{}, labels...)
		}
	}
	sb := pr.sandbox
	if sb == nil {
		return
	}
	podLabels := []string{"", cg, "", "", pod.Namespace, pod.Name}
	m.addUsage(podLabels, sb.GetLinux().GetCpu(), sb.GetLinux().GetMemory())
	if st := pod.Status.StartTime; st != nil {
		m.add(descStartTime, prometheus.GaugeValue, float64(st.Unix()), time.Time{}, podLabels...)
	}

	id := sb.GetAttributes().GetId()
	seen[id] = true
	meta := s.sandboxMeta(ctx, id)
	pauseLabels := []string{"", cg + "/" + id, meta.image, id, pod.Namespace, pod.Name}
	if !meta.created.IsZero() {
		m.add(descStartTime, prometheus.GaugeValue, float64(meta.created.Unix()), time.Time{}, pauseLabels...)
	}
	if pod.Spec.HostNetwork {
		return // the node's interfaces are not the pod's
	}
	if meta.pid > 0 {
		ifaces, err := readNetDev(filepath.Join(s.procRoot, strconv.Itoa(meta.pid), "net", "dev"))
		if err == nil {
			now := time.Now()
			for _, i := range ifaces {
				l := withLabel(pauseLabels, i.name)
				for _, c := range []struct {
					desc *prometheus.Desc
					v    uint64
				}{
					{descRxBytes, i.rxBytes}, {descRxPackets, i.rxPackets}, {descRxErrors, i.rxErrors}, {descRxDropped, i.rxDropped},
					{descTxBytes, i.txBytes}, {descTxPackets, i.txPackets}, {descTxErrors, i.txErrors}, {descTxDropped, i.txDropped},
				} {
					m.add(c.desc, prometheus.CounterValue, float64(c.v), now, l...)
				}
			}
			return
		}
		s.log.Debug("read pod network counters", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
	// What CRI carries: bytes and errors, no packets or drops.
	net := sb.GetLinux().GetNetwork()
	at := nanos(net.GetTimestamp())
	ifaces := net.GetInterfaces()
	if d := net.GetDefaultInterface(); d != nil {
		ifaces = append([]*runtimeapi.NetworkInterfaceUsage{d}, ifaces...)
	}
	for _, i := range ifaces {
		if i.GetName() == "" {
			continue
		}
		l := withLabel(pauseLabels, i.GetName())
		for _, c := range []struct {
			desc *prometheus.Desc
			v    *runtimeapi.UInt64Value
		}{{descRxBytes, i.GetRxBytes()}, {descRxErrors, i.GetRxErrors()}, {descTxBytes, i.GetTxBytes()}, {descTxErrors, i.GetTxErrors()}} {
			if c.v != nil {
				m.add(c.desc, prometheus.CounterValue, float64(c.v.GetValue()), at, l...)
			}
		}
	}
}

// memoryLimits are the containers' memory limits in bytes, by name, 0 for
// none (cAdvisor reports an unlimited cgroup as 0).
func memoryLimits(pod *v1.Pod) map[string]float64 {
	out := map[string]float64{}
	add := func(name string, r v1.ResourceRequirements) {
		out[name] = 0
		if q, ok := r.Limits[v1.ResourceMemory]; ok {
			out[name] = float64(q.Value())
		}
	}
	for _, c := range pod.Spec.InitContainers {
		add(c.Name, c.Resources)
	}
	for _, c := range pod.Spec.Containers {
		add(c.Name, c.Resources)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		add(c.Name, c.Resources)
	}
	return out
}

// sandboxMeta is what a sandbox's verbose status says that stats do not.
type sandboxMeta struct {
	created time.Time
	pid     int    // the pause process; 0 when the runtime does not say
	image   string // the pause image; "" when the runtime does not say
}

// sandboxCache keeps each sandbox's sandboxMeta while the sandbox is
// listed: none of it changes during a sandbox's life, so the runtime is
// asked once per sandbox, not once per scrape.
type sandboxCache struct {
	mu sync.Mutex
	m  map[string]sandboxMeta
}

func (c *sandboxCache) get(id string) (sandboxMeta, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	meta, ok := c.m[id]
	return meta, ok
}

func (c *sandboxCache) put(id string, meta sandboxMeta) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]sandboxMeta{}
	}
	c.m[id] = meta
}

// prune forgets the sandboxes not in keep.
func (c *sandboxCache) prune(keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.m {
		if !keep[id] {
			delete(c.m, id)
		}
	}
}

// sandboxMeta returns what the runtime's verbose status says of sandbox
// id, from the cache when it has been asked before. A failed call is not
// cached (the next scrape asks again); its result is the zero sandboxMeta.
func (s *Server) sandboxMeta(ctx context.Context, id string) sandboxMeta {
	if meta, ok := s.sandboxes.get(id); ok {
		return meta
	}
	resp, err := s.runtime.PodSandboxStatus(ctx, id, true)
	if err != nil {
		s.log.Debug("pod sandbox status", "sandbox", id, "err", err)
		return sandboxMeta{}
	}
	meta := sandboxMeta{created: nanos(resp.GetStatus().GetCreatedAt())}
	// containerd's verbose info: {"pid": 1234, "image": "registry.k8s.io/pause:3.9", ...}.
	var info struct {
		Pid   int    `json:"pid"`
		Image string `json:"image"`
	}
	if raw, ok := resp.GetInfo()["info"]; ok && json.Unmarshal([]byte(raw), &info) == nil {
		meta.pid, meta.image = info.Pid, info.Image
	}
	s.sandboxes.put(id, meta)
	return meta
}

// netDev is one interface's counters from /proc/<pid>/net/dev.
type netDev struct {
	name                                    string
	rxBytes, rxPackets, rxErrors, rxDropped uint64
	txBytes, txPackets, txErrors, txDropped uint64
}

// readNetDev reads the interfaces of the network namespace a process is
// in, loopback left out as cAdvisor does.
func readNetDev(path string) ([]netDev, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []netDev
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue // the two header lines
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if name == "lo" {
			continue
		}
		// receive: bytes packets errs drop fifo frame compressed multicast,
		// then transmit: bytes packets errs drop fifo colls carrier compressed.
		if len(f) < 16 {
			return nil, fmt.Errorf("%s: short line for %s", path, name)
		}
		var v [16]uint64
		for i := range v {
			if v[i], err = strconv.ParseUint(f[i], 10, 64); err != nil {
				return nil, fmt.Errorf("%s: %s field %d: %w", path, name, i, err)
			}
		}
		out = append(out, netDev{name: name,
			rxBytes: v[0], rxPackets: v[1], rxErrors: v[2], rxDropped: v[3],
			txBytes: v[8], txPackets: v[9], txErrors: v[10], txDropped: v[11]})
	}
	return out, nil
}
