package server

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var (
	statsTime   = time.Unix(1700000100, 0)
	startedTime = metav1.NewTime(time.Unix(1700000000, 0).Local())
)

func u64(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }

func ctrStats(id, ns, pod, uid, name string, cpuNs, nanoCores, ws, usage uint64) *runtimeapi.ContainerStats {
	labels := map[string]string{labelPodNamespace: ns, labelPodName: pod, labelPodUID: uid, labelContainerName: name}
	if ns == "" {
		labels = nil
	}
	cs := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: name}, Labels: labels},
		Cpu:        &runtimeapi.CpuUsage{Timestamp: statsTime.UnixNano(), UsageCoreNanoSeconds: u64(cpuNs)},
		Memory:     &runtimeapi.MemoryUsage{Timestamp: statsTime.UnixNano(), WorkingSetBytes: u64(ws), UsageBytes: u64(usage)},
	}
	if nanoCores > 0 {
		cs.Cpu.UsageNanoCores = u64(nanoCores)
	}
	return cs
}

func running(name, id string) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, ContainerID: "containerd://" + id,
		State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: startedTime}}}
}

// statsFixture: pod default/web has sandbox stats, kube-system/dns has none
// (its totals are summed), and there are stats to ignore: an older instance,
// a pod of the same name with another UID, and a container without labels.
func statsFixture(t *testing.T) (*harness, *fakeRuntime) {
	web := testPod("default", "web", "u1", "app", "sidecar")
	web.Status.StartTime = &startedTime
	web.Status.ContainerStatuses = []v1.ContainerStatus{running("app", "c1"), running("sidecar", "c2")}
	dns := testPod("kube-system", "dns", "u2", "coredns")
	dns.Status.ContainerStatuses = []v1.ContainerStatus{running("coredns", "c3")}
	idle := testPod("default", "idle", "u3", "x")
	pods := &fakePods{pods: []*v1.Pod{web, dns, idle}}
	rt := &fakeRuntime{
		containerStats: []*runtimeapi.ContainerStats{
			ctrStats("c1", "default", "web", "u1", "app", 2e9, 5e8, 1000, 2000),
			ctrStats("c0", "default", "web", "u1", "app", 9e9, 9e8, 9, 9), // the instance before c1
			ctrStats("c2", "default", "web", "u1", "sidecar", 1e9, 0, 300, 400),
			ctrStats("c3", "kube-system", "dns", "u2", "coredns", 4e9, 2e8, 700, 800),
			ctrStats("c9", "kube-system", "dns", "old-uid", "coredns", 1, 1, 1, 1),
			ctrStats("c8", "", "", "", "pause", 1, 1, 1, 1),
		},
		sandboxStats: []*runtimeapi.PodSandboxStats{{
			Attributes: &runtimeapi.PodSandboxAttributes{Id: "sb1", Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "u1"}},
			Linux: &runtimeapi.LinuxPodSandboxStats{
				Cpu:    &runtimeapi.CpuUsage{Timestamp: statsTime.UnixNano(), UsageCoreNanoSeconds: u64(3e9), UsageNanoCores: u64(6e8)},
				Memory: &runtimeapi.MemoryUsage{Timestamp: statsTime.UnixNano(), WorkingSetBytes: u64(5000), UsageBytes: u64(6000)},
			},
		}},
	}
	proc := t.TempDir()
	writeLog(t, proc, "stat", "cpu  100 20 30 1000 50 5 5 0 0 0\ncpu0 100 20 30 1000 50 5 5 0 0 0\nbtime 1700000000\n")
	writeLog(t, proc, "meminfo", "MemTotal:        1000 kB\nMemFree:          200 kB\nMemAvailable:     600 kB\nInactive(file):   100 kB\n")
	return startServer(t, pods, rt, func(s *Server) { s.procRoot = proc }), rt
}

func ns(v uint64) *uint64 { return &v }

func TestStatsSummary(t *testing.T) {
	h, _ := statsFixture(t)
	code, body := h.get(t, "/stats/summary")
	if code != http.StatusOK {
		t.Fatalf("GET /stats/summary = %d %s", code, body)
	}
	var got Summary
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	at := metav1.NewTime(statsTime)
	want := Summary{
		Node: NodeStats{
			NodeName:  "node-1",
			StartTime: metav1.NewTime(time.Unix(1700000000, 0)),
			CPU:       &CPUStats{UsageCoreNanoSeconds: ns(1.6e9)},
			Memory:    &MemoryStats{AvailableBytes: ns(300 << 10), UsageBytes: ns(800 << 10), WorkingSetBytes: ns(700 << 10)},
		},
		Pods: []PodStats{
			{
				PodRef:    PodReference{Name: "web", Namespace: "default", UID: "u1"},
				StartTime: startedTime,
				Containers: []ContainerStats{
					{Name: "app", StartTime: startedTime, CPU: &CPUStats{Time: at, UsageNanoCores: ns(5e8), UsageCoreNanoSeconds: ns(2e9)},
						Memory: &MemoryStats{Time: at, WorkingSetBytes: ns(1000), UsageBytes: ns(2000)}},
					{Name: "sidecar", StartTime: startedTime, CPU: &CPUStats{Time: at, UsageCoreNanoSeconds: ns(1e9)},
						Memory: &MemoryStats{Time: at, WorkingSetBytes: ns(300), UsageBytes: ns(400)}},
				},
				CPU:    &CPUStats{Time: at, UsageNanoCores: ns(6e8), UsageCoreNanoSeconds: ns(3e9)},
				Memory: &MemoryStats{Time: at, WorkingSetBytes: ns(5000), UsageBytes: ns(6000)},
			},
			{
				PodRef: PodReference{Name: "dns", Namespace: "kube-system", UID: "u2"},
				Containers: []ContainerStats{
					{Name: "coredns", StartTime: startedTime, CPU: &CPUStats{Time: at, UsageNanoCores: ns(2e8), UsageCoreNanoSeconds: ns(4e9)},
						Memory: &MemoryStats{Time: at, WorkingSetBytes: ns(700), UsageBytes: ns(800)}},
				},
				CPU:    &CPUStats{Time: at, UsageNanoCores: ns(2e8), UsageCoreNanoSeconds: ns(4e9)},
				Memory: &MemoryStats{Time: at, WorkingSetBytes: ns(700), UsageBytes: ns(800)},
			},
		},
	}
	// The node's reading time is the scrape's; the first node reading has
	// no rate yet.
	ignoreNodeTime := cmpopts.IgnoreFields(NodeStats{}, "CPU.Time", "Memory.Time")
	if diff := cmp.Diff(want, got, ignoreNodeTime, cmp.Comparer(func(a, b metav1.Time) bool { return a.Equal(&b) })); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
}

func TestStatsSummaryRuntimeError(t *testing.T) {
	h, rt := statsFixture(t)
	rt.statsErr = grpcstatus.Error(codes.Unavailable, "containerd is down")
	code, body := h.get(t, "/stats/summary")
	if st := decodeStatus(t, body); code != http.StatusServiceUnavailable || st.Message != "list container stats: containerd is down" {
		t.Errorf("GET /stats/summary = %d %q", code, st.Message)
	}
	code, body = h.get(t, "/metrics/resource")
	if code != http.StatusOK || !strings.Contains(body, "\nresource_scrape_error 1\n") || !strings.Contains(body, "\nnode_memory_working_set_bytes 716800 ") {
		t.Errorf("GET /metrics/resource with the runtime down = %d:\n%s", code, body)
	}
}

func TestResourceMetrics(t *testing.T) {
	h, rt := statsFixture(t)
	rt.sandboxErr = grpcstatus.Error(codes.Unimplemented, "no sandbox stats")
	code, body := h.get(t, "/metrics/resource")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics/resource = %d %s", code, body)
	}
	ms := statsTime.UnixMilli()
	start := startedTime.Unix()
	for _, want := range []string{
		"# TYPE container_cpu_usage_seconds_total counter\n",
		`container_cpu_usage_seconds_total{container="app",namespace="default",pod="web"} 2 ` + itoa(ms) + "\n",
		`container_cpu_usage_seconds_total{container="coredns",namespace="kube-system",pod="dns"} 4 ` + itoa(ms) + "\n",
		`container_memory_working_set_bytes{container="sidecar",namespace="default",pod="web"} 300 ` + itoa(ms) + "\n",
		`container_start_time_seconds{container="app",namespace="default",pod="web"} ` + strconv.FormatFloat(float64(start), 'g', -1, 64) + " " + itoa(start*1000) + "\n",
		"# TYPE pod_memory_working_set_bytes gauge\n",
		// Without sandbox stats the pod is the sum of its containers.
		`pod_cpu_usage_seconds_total{namespace="default",pod="web"} 3 ` + itoa(ms) + "\n",
		`pod_memory_working_set_bytes{namespace="default",pod="web"} 1300 ` + itoa(ms) + "\n",
		"\nnode_cpu_usage_seconds_total 1.6 ",
		"\nnode_memory_working_set_bytes 716800 ",
		"\nresource_scrape_error 0\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q; got:\n%s", want, body)
		}
	}
	for _, unwanted := range []string{`"c0"`, "old-uid", "pause", `pod="idle"`} {
		if strings.Contains(body, unwanted) {
			t.Errorf("metrics contain %s", unwanted)
		}
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestRateCache(t *testing.T) {
	var c rateCache
	t0 := time.Unix(100, 0)
	steps := []struct {
		at    time.Time
		total uint64
		want  *uint64
	}{
		{t0, 1e9, nil},                          // first reading: no rate
		{t0.Add(2 * time.Second), 2e9, ns(5e8)}, // 1s of CPU over 2s: half a core
		{t0.Add(2 * time.Second), 2e9, ns(5e8)}, // the same reading again: the same rate
		{t0.Add(3 * time.Second), 1e8, nil},     // counter reset
		{t0.Add(4 * time.Second), 2.1e9, ns(2e9)},
	}
	for i, s := range steps {
		got := c.rate("k", s.at, s.total)
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("step %d (-want +got):\n%s", i, diff)
		}
	}
	c.prune(map[string]bool{})
	if len(c.last) != 0 {
		t.Errorf("prune kept %v", c.last)
	}
}

func TestReadProc(t *testing.T) {
	dir := t.TempDir()
	if _, err := readProcStat(filepath.Join(dir, "nope")); err == nil {
		t.Error("readProcStat of a missing file succeeded")
	}
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte("intr 1 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readProcStat(filepath.Join(dir, "stat")); err == nil {
		t.Error("readProcStat without a cpu line succeeded")
	}
	if st, err := readProcStat("/proc/stat"); err != nil || st.busy == 0 || st.cpus == 0 {
		t.Errorf("readProcStat(/proc/stat) = %+v, %v", st, err)
	}
	if mem, err := readMeminfo("/proc/meminfo"); err != nil || mem["MemTotal"] == 0 {
		t.Errorf("readMeminfo(/proc/meminfo) = %v, %v", mem["MemTotal"], err)
	}
}
