package server

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cadvisorFixture is pod default/web (Burstable, UID u1) with containers
// app (c1, 128Mi limit, RSS and a writable layer) and sidecar (c2, no
// limit), sandbox sb1 with CPU, memory and CRI network stats, plus stats
// to ignore: an earlier instance of app and a container of another pod.
// pid is the pause process the sandbox's verbose status names (0: none).
func cadvisorFixture(t *testing.T, pid int) (*harness, *fakeRuntime) {
	web := testPod("default", "web", "u1", "app", "sidecar")
	web.Spec.Containers[0].Resources.Limits = v1.ResourceList{v1.ResourceMemory: resource.MustParse("128Mi")}
	web.Status.StartTime = &startedTime
	web.Status.QOSClass = v1.PodQOSBurstable
	web.Status.ContainerStatuses = []v1.ContainerStatus{running("app", "c1"), running("sidecar", "c2")}
	web.Status.ContainerStatuses[0].Image = "docker.io/library/nginx:1.25"
	web.Status.ContainerStatuses[1].Image = "docker.io/library/busybox:1.36"

	app := ctrStats("c1", "default", "web", "u1", "app", 2e9, 0, 1000, 2000)
	app.Memory.RssBytes = u64(700)
	app.WritableLayer = &runtimeapi.FilesystemUsage{
		Timestamp: statsTime.UnixNano(),
		FsId:      &runtimeapi.FilesystemIdentifier{Mountpoint: "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs"},
		UsedBytes: u64(4096),
	}
	info := `{"pid":0,"image":"registry.k8s.io/pause:3.9"}`
	if pid > 0 {
		info = fmt.Sprintf(`{"pid":%d,"image":"registry.k8s.io/pause:3.9","runtimeSpec":{}}`, pid)
	}
	rt := &fakeRuntime{
		containerStats: []*runtimeapi.ContainerStats{
			app,
			ctrStats("c0", "default", "web", "u1", "app", 9e9, 0, 9, 9), // the instance before c1
			ctrStats("c2", "default", "web", "u1", "sidecar", 1e9, 0, 300, 400),
			ctrStats("c9", "default", "other", "u9", "x", 1, 0, 1, 1), // a pod not on this node
		},
		sandboxStats: []*runtimeapi.PodSandboxStats{{
			Attributes: &runtimeapi.PodSandboxAttributes{Id: "sb1", Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "u1"}},
			Linux: &runtimeapi.LinuxPodSandboxStats{
				Cpu:    &runtimeapi.CpuUsage{Timestamp: statsTime.UnixNano(), UsageCoreNanoSeconds: u64(3e9)},
				Memory: &runtimeapi.MemoryUsage{Timestamp: statsTime.UnixNano(), WorkingSetBytes: u64(5000), UsageBytes: u64(6000)},
				// What containerd 1.6 sends: the default interface's bytes
				// and errors, no timestamp.
				Network: &runtimeapi.NetworkUsage{DefaultInterface: &runtimeapi.NetworkInterfaceUsage{
					Name: "eth0", RxBytes: u64(1000), RxErrors: u64(1), TxBytes: u64(2000), TxErrors: u64(2),
				}},
			},
		}},
		sandboxStatus: map[string]*runtimeapi.PodSandboxStatusResponse{"sb1": {
			Status: &runtimeapi.PodSandboxStatus{Id: "sb1", CreatedAt: startedTime.UnixNano()},
			Info:   map[string]string{"info": info},
		}},
	}
	proc := t.TempDir()
	writeLog(t, proc, "stat", "cpu  100 20 30 1000 50 5 5 0 0 0\ncpu0 50 10 15 500 25 2 2 0 0 0\ncpu1 50 10 15 500 25 3 3 0 0 0\nbtime 1700000000\n")
	writeLog(t, proc, "meminfo", "MemTotal:        1000 kB\nMemFree:          200 kB\nInactive(file):   100 kB\n")
	if err := os.MkdirAll(filepath.Join(proc, "sys", "kernel", "random"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeLog(t, proc, "sys/kernel/random/boot_id", "boot-1\n")
	if pid > 0 {
		if err := os.MkdirAll(filepath.Join(proc, fmt.Sprint(pid), "net"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeLog(t, proc, fmt.Sprintf("%d/net/dev", pid), ""+
			"Inter-|   Receive                                                |  Transmit\n"+
			" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"+
			"    lo:     500       5    0    0    0     0          0         0      500       5    0    0    0     0       0          0\n"+
			"  eth0:    1500      15    3    4    0     0          0         0     2500      25    5    6    0     0       0          0\n")
	}
	h := startServer(t, &fakePods{pods: []*v1.Pod{web}}, rt, func(s *Server) { s.procRoot = proc })
	return h, rt
}

// sample is one series as the test expects it; ts is the explicit
// timestamp in milliseconds, 0 for none.
type sample struct {
	labels map[string]string
	value  float64
	ts     int64
}

// samples flattens families into name -> samples.
func samples(t *testing.T, fams map[string]*dto.MetricFamily) map[string][]sample {
	t.Helper()
	out := map[string][]sample{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			v := m.GetGauge().GetValue()
			if f.GetType() == dto.MetricType_COUNTER {
				v = m.GetCounter().GetValue()
			}
			out[name] = append(out[name], sample{labels: labelsOf(m), value: v, ts: m.GetTimestampMs()})
		}
	}
	return out
}

func series(container, id, image, name string, extra ...string) map[string]string {
	l := map[string]string{"container": container, "id": id, "image": image, "name": name, "namespace": "default", "pod": "web"}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

func TestCadvisorMetrics(t *testing.T) {
	const cg = "/kubepods/burstable/podu1"
	ms := statsTime.UnixMilli()
	app := series("app", cg+"/c1", "docker.io/library/nginx:1.25", "c1")
	sidecar := series("sidecar", cg+"/c2", "docker.io/library/busybox:1.36", "c2")
	pod := series("", cg, "", "")
	pause := series("", cg+"/sb1", "registry.k8s.io/pause:3.9", "sb1")
	with := func(l map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for a, b := range l {
			out[a] = b
		}
		return out
	}
	start := float64(startedTime.Unix())
	// Expected for every case; network series differ by source.
	common := map[string][]sample{
		"container_cpu_usage_seconds_total": {
			{with(app, "cpu", "total"), 2, ms}, {with(sidecar, "cpu", "total"), 1, ms}, {with(pod, "cpu", "total"), 3, ms},
		},
		"container_memory_working_set_bytes": {{app, 1000, ms}, {sidecar, 300, ms}, {pod, 5000, ms}},
		"container_memory_usage_bytes":       {{app, 2000, ms}, {sidecar, 400, ms}, {pod, 6000, ms}},
		"container_memory_rss":               {{app, 700, ms}},
		"container_fs_usage_bytes": {
			{with(app, "device", "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs"), 4096, ms},
		},
		"container_start_time_seconds":      {{app, start, 0}, {sidecar, start, 0}, {pod, start, 0}, {pause, start, 0}},
		"container_spec_memory_limit_bytes": {{app, 128 << 20, 0}, {sidecar, 0, 0}},
		"container_scrape_error":            {{map[string]string{}, 0, 0}},
	}
	eth0 := with(pause, "interface", "eth0")
	tests := []struct {
		name    string
		pid     int
		network map[string][]sample // ts -1: present, any value
	}{
		{"network from the pause process's net/dev", 4242, map[string][]sample{
			"container_network_receive_bytes_total":            {{eth0, 1500, -1}},
			"container_network_receive_packets_total":          {{eth0, 15, -1}},
			"container_network_receive_errors_total":           {{eth0, 3, -1}},
			"container_network_receive_packets_dropped_total":  {{eth0, 4, -1}},
			"container_network_transmit_bytes_total":           {{eth0, 2500, -1}},
			"container_network_transmit_packets_total":         {{eth0, 25, -1}},
			"container_network_transmit_errors_total":          {{eth0, 5, -1}},
			"container_network_transmit_packets_dropped_total": {{eth0, 6, -1}},
		}},
		{"network from CRI when the pid is unknown", 0, map[string][]sample{
			"container_network_receive_bytes_total":   {{eth0, 1000, 0}},
			"container_network_receive_errors_total":  {{eth0, 1, 0}},
			"container_network_transmit_bytes_total":  {{eth0, 2000, 0}},
			"container_network_transmit_errors_total": {{eth0, 2, 0}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, rt := cadvisorFixture(t, tt.pid)
			code, body := h.get(t, "/metrics/cadvisor")
			if code != http.StatusOK {
				t.Fatalf("GET /metrics/cadvisor = %d %s", code, body)
			}
			fams := parseMetrics(t, body)
			got := samples(t, fams)
			want := map[string][]sample{}
			for k, v := range common {
				want[k] = v
			}
			for k, v := range tt.network {
				want[k] = v
			}
			for name, w := range want {
				// The root cgroup is checked below.
				g := slices.DeleteFunc(slices.Clone(got[name]), func(s sample) bool { return s.labels["id"] == "/" })
				if strings.HasPrefix(name, "container_network_") {
					for i := range g {
						if g[i].ts > 0 && w[0].ts == -1 {
							g[i].ts = -1 // read now: present is enough
						}
					}
				}
				sortSamples(w)
				sortSamples(g)
				if diff := cmp.Diff(w, g, cmp.AllowUnexported(sample{})); diff != "" {
					t.Errorf("%s (-want +got):\n%s", name, diff)
				}
			}
			if tt.pid == 0 {
				for _, name := range []string{"container_network_receive_packets_total", "container_network_transmit_packets_total"} {
					if _, ok := fams[name]; ok {
						t.Errorf("%s present without a source for packets", name)
					}
				}
			}
			for name, typ := range map[string]dto.MetricType{
				"container_cpu_usage_seconds_total":     dto.MetricType_COUNTER,
				"container_network_receive_bytes_total": dto.MetricType_COUNTER,
				"container_memory_working_set_bytes":    dto.MetricType_GAUGE,
				"machine_cpu_cores":                     dto.MetricType_GAUGE,
			} {
				if got := fams[name].GetType(); got != typ {
					t.Errorf("%s is a %v, want %v", name, got, typ)
				}
			}
			if h := fams["container_cpu_usage_seconds_total"].GetHelp(); h != "Cumulative cpu time consumed in seconds." {
				t.Errorf("container_cpu_usage_seconds_total help %q", h)
			}

			// The node as the root cgroup, and the machine.
			var root []string
			for _, s := range got["container_memory_working_set_bytes"] {
				if s.labels["id"] == "/" {
					root = append(root, fmt.Sprint(s.value))
				}
			}
			if diff := cmp.Diff([]string{fmt.Sprint(700 << 10)}, root); diff != "" {
				t.Errorf("root working set (-want +got):\n%s", diff)
			}
			for name, v := range map[string]float64{"machine_cpu_cores": 2, "machine_memory_bytes": 1000 << 10} {
				m := got[name]
				if len(m) != 1 || m[0].value != v || m[0].labels["boot_id"] != "boot-1" {
					t.Errorf("%s = %+v, want %v with boot_id boot-1", name, m, v)
				}
				for _, l := range machineLabels {
					if _, ok := m[0].labels[l]; !ok {
						t.Errorf("%s has no label %s", name, l)
					}
				}
			}
			for _, unwanted := range []string{`"c0"`, `"c9"`, `pod="other"`} {
				if strings.Contains(body, unwanted) {
					t.Errorf("metrics contain %s", unwanted)
				}
			}

			// The sandbox's verbose status is asked once, not per scrape.
			if code, body := h.get(t, "/metrics/cadvisor"); code != http.StatusOK {
				t.Fatalf("second GET /metrics/cadvisor = %d %s", code, body)
			}
			if n := rt.sandboxStatusCalls(); n != 1 {
				t.Errorf("PodSandboxStatus called %d times for two scrapes, want 1", n)
			}
		})
	}
}

func sortSamples(s []sample) {
	slices.SortFunc(s, func(a, b sample) int { return strings.Compare(fmt.Sprint(a.labels), fmt.Sprint(b.labels)) })
}

func TestCadvisorMetricsRuntimeDown(t *testing.T) {
	h, rt := cadvisorFixture(t, 0)
	rt.mu.Lock()
	rt.statsErr = grpcstatus.Error(codes.Unavailable, "containerd is down")
	rt.mu.Unlock()
	code, body := h.get(t, "/metrics/cadvisor")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics/cadvisor with the runtime down = %d %s", code, body)
	}
	got := samples(t, parseMetrics(t, body))
	if e := got["container_scrape_error"]; len(e) != 1 || e[0].value != 1 {
		t.Errorf("container_scrape_error = %+v, want 1", e)
	}
	if len(got["machine_cpu_cores"]) != 1 {
		t.Errorf("machine_cpu_cores missing with the runtime down")
	}
	for _, s := range got["container_memory_working_set_bytes"] {
		if s.labels["id"] != "/" {
			t.Errorf("a container series with the runtime down: %+v", s)
		}
	}
}

func TestReadNetDev(t *testing.T) {
	dir := t.TempDir()
	path := writeLog(t, dir, "dev", "h1\nh2\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n")
	got, err := readNetDev(path)
	want := []netDev{{name: "eth0", rxBytes: 1, rxPackets: 2, rxErrors: 3, rxDropped: 4, txBytes: 9, txPackets: 10, txErrors: 11, txDropped: 12}}
	if err != nil || !cmp.Equal(want, got, cmp.AllowUnexported(netDev{})) {
		t.Errorf("readNetDev = %+v, %v; want %+v", got, err, want)
	}
	bad := writeLog(t, dir, "bad", "  eth0: 1 2 3\n")
	if _, err := readNetDev(bad); err == nil {
		t.Error("readNetDev of a short line succeeded")
	}
}
