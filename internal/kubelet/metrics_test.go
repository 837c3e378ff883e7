package kubelet

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestRuntimeCounts(t *testing.T) {
	sb := func(uid string, st runtimeapi.PodSandboxState) *runtimeapi.PodSandbox {
		return &runtimeapi.PodSandbox{Labels: map[string]string{labelPodUID: uid}, State: st}
	}
	ctr := func(uid string, st runtimeapi.ContainerState) *runtimeapi.Container {
		return &runtimeapi.Container{Labels: map[string]string{labelPodUID: uid}, State: st}
	}
	tests := []struct {
		name   string
		sbs    []*runtimeapi.PodSandbox
		cs     []*runtimeapi.Container
		pods   int
		states map[string]int
	}{
		{name: "nothing", states: map[string]int{"created": 0, "running": 0, "exited": 0, "unknown": 0}},
		{
			name: "pods with a ready sandbox, containers by state",
			sbs: []*runtimeapi.PodSandbox{
				sb("a", runtimeapi.PodSandboxState_SANDBOX_READY),
				sb("a", runtimeapi.PodSandboxState_SANDBOX_NOTREADY), // an earlier sandbox of a
				sb("b", runtimeapi.PodSandboxState_SANDBOX_NOTREADY), // stopped
				sb("c", runtimeapi.PodSandboxState_SANDBOX_READY),
				{State: runtimeapi.PodSandboxState_SANDBOX_READY}, // not the kubelet's
			},
			cs: []*runtimeapi.Container{
				ctr("a", runtimeapi.ContainerState_CONTAINER_RUNNING),
				ctr("a", runtimeapi.ContainerState_CONTAINER_EXITED),
				ctr("b", runtimeapi.ContainerState_CONTAINER_EXITED),
				ctr("c", runtimeapi.ContainerState_CONTAINER_CREATED),
				ctr("c", runtimeapi.ContainerState_CONTAINER_UNKNOWN),
				{State: runtimeapi.ContainerState_CONTAINER_RUNNING}, // not the kubelet's
			},
			pods:   2,
			states: map[string]int{"created": 1, "running": 1, "exited": 2, "unknown": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pods, states := runtimeCounts(tt.sbs, tt.cs)
			if pods != tt.pods {
				t.Errorf("pods = %d, want %d", pods, tt.pods)
			}
			if diff := cmp.Diff(tt.states, states); diff != "" {
				t.Errorf("states (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodWork(t *testing.T) {
	tests := []struct {
		name  string
		notes []string
		want  string
	}{
		{"first sync of a new pod", []string{workCreate}, workCreate},
		{"an update before the first sync is still its creation", []string{workCreate, workUpdate, workSync}, workCreate},
		{"a resync then an update counts as an update", []string{workSync, workUpdate}, workUpdate},
		{"removal outweighs all", []string{workUpdate, workKill, workSync}, workKill},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &Kubelet{work: map[types.UID]string{}}
			for _, op := range tt.notes {
				k.noteWorkLocked("u", op)
			}
			if got := k.takeWork("u"); got != tt.want {
				t.Errorf("takeWork = %q, want %q", got, tt.want)
			}
			// Taken: the next sync nobody noted is a plain sync.
			if got := k.takeWork("u"); got != workSync {
				t.Errorf("second takeWork = %q, want %q", got, workSync)
			}
		})
	}
}

// TestKubeletMetricsRegistration checks the names, types, help texts and
// labels against upstream's (pkg/kubelet/metrics/metrics.go).
func TestKubeletMetricsRegistration(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := newKubeletMetrics(reg, "n1")
	if err != nil {
		t.Fatal(err)
	}
	m.setRuntimeCounts(nil, nil)
	m.podWorkerDuration.WithLabelValues(workCreate).Observe(0.1)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	type family struct {
		typ    dto.MetricType
		help   string
		labels string // the label names of the first series
	}
	got := map[string]family{}
	for _, f := range fams {
		var names []string
		if len(f.GetMetric()) > 0 {
			for _, l := range f.GetMetric()[0].GetLabel() {
				names = append(names, l.GetName())
			}
		}
		got[f.GetName()] = family{f.GetType(), f.GetHelp(), strings.Join(names, ",")}
	}
	want := map[string]family{
		"kubelet_node_name":                    {dto.MetricType_GAUGE, "[ALPHA] The node's name. The count is always 1.", "node"},
		"kubelet_running_pods":                 {dto.MetricType_GAUGE, "[ALPHA] Number of pods that have a running pod sandbox", ""},
		"kubelet_running_containers":           {dto.MetricType_GAUGE, "[ALPHA] Number of containers currently running", "container_state"},
		"kubelet_pleg_relist_duration_seconds": {dto.MetricType_HISTOGRAM, "[ALPHA] Duration in seconds for relisting pods in PLEG.", ""},
		"kubelet_pleg_relist_interval_seconds": {dto.MetricType_HISTOGRAM, "[ALPHA] Interval in seconds between relisting in PLEG.", ""},
		"kubelet_pod_start_duration_seconds": {dto.MetricType_HISTOGRAM,
			"[ALPHA] Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run", ""},
		"kubelet_pod_worker_duration_seconds": {dto.MetricType_HISTOGRAM,
			"[ALPHA] Duration in seconds to sync a single pod. Broken down by operation type: create, update, or sync", "operation_type"},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(family{})); diff != "" {
		t.Errorf("families (-want +got):\n%s", diff)
	}
	for _, f := range fams {
		switch f.GetName() {
		case "kubelet_node_name":
			if v := f.GetMetric()[0].GetGauge().GetValue(); v != 1 || f.GetMetric()[0].GetLabel()[0].GetValue() != "n1" {
				t.Errorf("kubelet_node_name = %v", f.GetMetric())
			}
		case "kubelet_pod_start_duration_seconds":
			var bounds []float64
			for _, b := range f.GetMetric()[0].GetHistogram().GetBucket() {
				bounds = append(bounds, b.GetUpperBound())
			}
			if diff := cmp.Diff(podStartupDurationBuckets, bounds); diff != "" {
				t.Errorf("kubelet_pod_start_duration_seconds buckets (-want +got):\n%s", diff)
			}
		}
	}

	// A second kubelet on the same registry is refused, not silently shared.
	_, err = newKubeletMetrics(reg, "n2")
	if are := (prometheus.AlreadyRegisteredError{}); err == nil || !errors.As(err, &are) {
		t.Errorf("second registration: %v, want AlreadyRegisteredError", err)
	}
	// Without a registry there is nothing to fail.
	if _, err := newKubeletMetrics(nil, "n1"); err != nil {
		t.Error(err)
	}
}
