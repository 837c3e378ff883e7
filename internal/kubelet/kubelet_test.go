package kubelet_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/kubelet"
	"github.com/skiff-io/skiff/test/framework"
)

// noVolumes is a Volumes with nothing to set up.
type noVolumes struct{}

func (noVolumes) SetUp(context.Context, *corev1.Pod) error { return nil }
func (noVolumes) Mounts(*corev1.Pod, *corev1.Container, map[string]string) ([]*runtimeapi.Mount, error) {
	return nil, nil
}
func (noVolumes) TearDown(types.UID) error            { return nil }
func (noVolumes) PodUIDsOnDisk() ([]types.UID, error) { return nil, nil }

// harness is a kubelet on a fake CRI runtime against the real API server.
type harness struct {
	t *testing.T
	// endpointReady is what PodEndpoints answers for pod "behind".
	endpointReady atomic.Bool
	c             *framework.Cluster
	rt            *critest.FakeRuntimeService
	updates       *recordingRuntime    // rt, recording UpdateContainerResources (resize_test.go)
	reg           *prometheus.Registry // the kubelet's Registerer
	ctx           context.Context
	stopped       chan struct{}
}

func start(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t}
	c := framework.StartInProcess(t, framework.WithControllers())
	h.updates = &recordingRuntime{FakeRuntimeService: critest.NewFakeRuntimeService()}
	rt := h.updates.FakeRuntimeService
	images := critest.NewFakeImageService()
	images.SetFakeImages([]string{"busybox:1.36"})
	h.reg = prometheus.NewPedanticRegistry()
	k, err := kubelet.New(kubelet.Config{
		Registerer: h.reg,
		NodeName:   "n1", NodeIP: "127.0.0.1", Client: c.Client, Runtime: h.updates, Images: images,
		RootDir: t.TempDir(), Volumes: noVolumes{},
		Env: func(context.Context, *corev1.Pod, *corev1.Container, kubelet.EnvInputs) ([]*runtimeapi.KeyValue, error) {
			return nil, nil
		},
		Expand:         func(s string, _ map[string]string) string { return s },
		RelistPeriod:   50 * time.Millisecond,
		SyncPeriod:     time.Second,
		BackoffInitial: time.Hour, // a second exit stays in back-off for the test
		PodEndpoints: func(pod *corev1.Pod) (bool, bool) {
			if pod.Name != "behind" {
				return false, false
			}
			return true, h.endpointReady.Load()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.c, h.rt, h.ctx, h.stopped = c, rt, ctx, make(chan struct{})
	go func() { defer close(h.stopped); _ = k.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-h.stopped })
	return h
}

func (h *harness) createPod(name string, policy corev1.RestartPolicy) *corev1.Pod {
	h.t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:                      "n1",
			RestartPolicy:                 policy,
			TerminationGracePeriodSeconds: ptr.To(int64(5)),
			Containers:                    []corev1.Container{{Name: "c", Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent}},
		},
	}
	p, err := h.c.Client.CoreV1().Pods("default").Create(h.ctx, p, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// waitStatus polls the pod until cond holds.
func (h *harness) waitStatus(name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	h.t.Helper()
	var last *corev1.Pod
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		p, err := h.c.Client.CoreV1().Pods("default").Get(h.ctx, name, metav1.GetOptions{})
		if err == nil {
			last = p
			if cond(p) {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("pod %s: %s not reached; last status %+v", name, what, last.Status)
	return nil
}

// exit makes the running containers of the pod's sandbox exit with code.
func (h *harness) exit(uid types.UID, code int32) {
	h.rt.Lock()
	defer h.rt.Unlock()
	for _, c := range h.rt.Containers {
		if c.Labels["io.kubernetes.pod.uid"] == string(uid) && c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			c.State = runtimeapi.ContainerState_CONTAINER_EXITED
			c.ExitCode = code
			c.FinishedAt = time.Now().UnixNano()
		}
	}
}

func TestKubeletRunsRestartsAndDeletesPods(t *testing.T) {
	h := start(t)

	t.Run("registers the node and its lease", func(t *testing.T) {
		framework.Eventually(t, 10*time.Second, func() bool {
			n, err := h.c.Client.CoreV1().Nodes().Get(h.ctx, "n1", metav1.GetOptions{})
			if err != nil {
				return false
			}
			_, lerr := h.c.Client.CoordinationV1().Leases("kube-node-lease").Get(h.ctx, "n1", metav1.GetOptions{})
			pods := n.Status.Capacity[corev1.ResourcePods]
			return lerr == nil && pods.Value() == 110 && n.Status.Addresses[0].Address == "127.0.0.1"
		})
	})

	pod := h.createPod("web", corev1.RestartPolicyAlways)
	t.Run("runs a pod to Running and Ready", func(t *testing.T) {
		p := h.waitStatus("web", "Running and Ready", func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].Ready
		})
		if p.Status.PodIP != critest.FakePodSandboxIPs[0] || p.Status.HostIP != "127.0.0.1" {
			t.Fatalf("podIP %q hostIP %q", p.Status.PodIP, p.Status.HostIP)
		}
		for _, typ := range []corev1.PodConditionType{corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady, corev1.PodReadyToStartContainers} {
			found := false
			for _, c := range p.Status.Conditions {
				found = found || (c.Type == typ && c.Status == corev1.ConditionTrue)
			}
			if !found {
				t.Fatalf("condition %s not True: %+v", typ, p.Status.Conditions)
			}
		}
	})

	t.Run("restarts an exited container, then backs off", func(t *testing.T) {
		h.exit(pod.UID, 1)
		h.waitStatus("web", "restarted once", func(p *corev1.Pod) bool {
			cs := p.Status.ContainerStatuses
			return len(cs) == 1 && cs[0].RestartCount == 1 && cs[0].State.Running != nil &&
				cs[0].LastTerminationState.Terminated != nil && cs[0].LastTerminationState.Terminated.ExitCode == 1
		})
		h.exit(pod.UID, 2)
		p := h.waitStatus("web", "CrashLoopBackOff", func(p *corev1.Pod) bool {
			cs := p.Status.ContainerStatuses
			return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "CrashLoopBackOff"
		})
		if cs := p.Status.ContainerStatuses[0]; cs.RestartCount != 1 || cs.LastTerminationState.Terminated.ExitCode != 2 || cs.Ready {
			t.Fatalf("in back-off: %+v", cs)
		}
		if p.Status.Phase != corev1.PodRunning {
			t.Fatalf("phase %s, want Running (restartPolicy Always)", p.Status.Phase)
		}
	})

	t.Run("a Never pod that exits 0 Succeeds", func(t *testing.T) {
		job := h.createPod("once", corev1.RestartPolicyNever)
		h.waitStatus("once", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
		h.exit(job.UID, 0)
		p := h.waitStatus("once", "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
		if term := p.Status.ContainerStatuses[0].State.Terminated; term == nil || term.Reason != "Completed" {
			t.Fatalf("terminated state %+v, want reason Completed", term)
		}
	})

	t.Run("deleting a pod stops its containers and removes it", func(t *testing.T) {
		if err := h.c.Client.CoreV1().Pods("default").Delete(h.ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 20*time.Second, func() bool {
			_, err := h.c.Client.CoreV1().Pods("default").Get(h.ctx, "web", metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		})
		framework.Eventually(t, 10*time.Second, func() bool {
			h.rt.Lock()
			defer h.rt.Unlock()
			for _, s := range h.rt.Sandboxes {
				if s.Labels["io.kubernetes.pod.uid"] == string(pod.UID) {
					return false // removed once the API object is gone
				}
			}
			return true
		})
	})
}

func TestKubeletHoldsSIGTERMUntilEndpointsLeave(t *testing.T) {
	h := start(t)
	pod := h.createPod("behind", corev1.RestartPolicyAlways)
	h.waitStatus("behind", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	h.endpointReady.Store(true)
	if err := h.c.Client.CoreV1().Pods("default").Delete(h.ctx, "behind", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	stopped := func() bool {
		h.rt.Lock()
		defer h.rt.Unlock()
		for _, c := range h.rt.Containers {
			if c.Labels["io.kubernetes.pod.uid"] == string(pod.UID) && c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
				return true
			}
		}
		return slices.Contains(h.rt.Called, "StopContainer")
	}
	// While a Service still lists the pod as ready, nothing is stopped.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if stopped() {
			t.Fatal("the container was stopped while the pod was still a ready endpoint")
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.endpointReady.Store(false)
	framework.Eventually(t, 10*time.Second, func() bool {
		_, err := h.c.Client.CoreV1().Pods("default").Get(h.ctx, "behind", metav1.GetOptions{})
		return apierrors.IsNotFound(err) && stopped()
	})
}

// metric is the value of the kubelet's series name{labels}: a gauge's
// value or a histogram's sample count; -1 when there is no such series.
func (h *harness) metric(name string, labels map[string]string) float64 {
	h.t.Helper()
	fams, err := h.reg.Gather()
	if err != nil {
		h.t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			if f.GetType() == dto.MetricType_HISTOGRAM {
				return float64(m.GetHistogram().GetSampleCount())
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func TestKubeletMetrics(t *testing.T) {
	h := start(t)
	running := map[string]string{"container_state": "running"}
	if v := h.metric("kubelet_node_name", map[string]string{"node": "n1"}); v != 1 {
		t.Errorf("kubelet_node_name{node=n1} = %v, want 1", v)
	}
	counts := func(pods, containers float64) func() bool {
		return func() bool {
			return h.metric("kubelet_running_pods", nil) == pods && h.metric("kubelet_running_containers", running) == containers
		}
	}
	framework.Eventually(t, 10*time.Second, counts(0, 0))

	isRunning := func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }
	for i, name := range []string{"one", "two"} {
		h.createPod(name, corev1.RestartPolicyAlways)
		h.waitStatus(name, "Running", isRunning)
		framework.Eventually(t, 10*time.Second, counts(float64(i+1), float64(i+1)))
		// Observed as the status turned Running, once per pod.
		if v := h.metric("kubelet_pod_start_duration_seconds", nil); v != float64(i+1) {
			t.Errorf("after %d pods started, kubelet_pod_start_duration_seconds has %v samples", i+1, v)
		}
	}
	if v := h.metric("kubelet_pod_worker_duration_seconds", map[string]string{"operation_type": "create"}); v < 2 {
		t.Errorf("kubelet_pod_worker_duration_seconds{operation_type=create} has %v samples, want 2 or more", v)
	}
	if v := h.metric("kubelet_pleg_relist_duration_seconds", nil); v < 1 {
		t.Errorf("kubelet_pleg_relist_duration_seconds has %v samples", v)
	}
	if v := h.metric("kubelet_pleg_relist_interval_seconds", nil); v < 1 {
		t.Errorf("kubelet_pleg_relist_interval_seconds has %v samples", v)
	}

	for i, name := range []string{"one", "two"} {
		if err := h.c.Client.CoreV1().Pods("default").Delete(h.ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 20*time.Second, counts(float64(1-i), float64(1-i)))
	}
	// The pods' removal from the API may come after their sandboxes stop.
	framework.Eventually(t, 20*time.Second, func() bool {
		return h.metric("kubelet_pod_worker_duration_seconds", map[string]string{"operation_type": "kill"}) >= 2
	})
	if v := h.metric("kubelet_pod_start_duration_seconds", nil); v != 2 {
		t.Errorf("kubelet_pod_start_duration_seconds has %v samples after the pods went, want 2", v)
	}
}
