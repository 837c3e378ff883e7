package integration

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/kubelet"
	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/test/framework"
)

// TestStatefulSetRecreatesRejectedPod is upstream's conformance test
// "Should recreate evicted statefulset" against the server's own
// StatefulSet controller and a kubelet on a fake CRI runtime: a pod
// holding host port 21017 runs on the node; the set's pod, bound to the
// same node with the same host port, is rejected by the kubelet (phase
// Failed, reason NodePorts), deleted and recreated by the controller until
// the port is free, and then runs.
func TestStatefulSetRecreatesRejectedPod(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers("statefulset"), func(cfg *server.Config) { cfg.DisableScheduler = true })
	cs := c.Client
	ctx, cancel := context.WithCancel(context.Background())
	rt := startFakeRuntimeKubelet(ctx, t, c, "n1")
	t.Cleanup(cancel) // runs before the kubelet's cleanup waits for it
	const ns = "default"

	port := corev1.ContainerPort{HostPort: 21017, ContainerPort: 21017, Name: "conflict"}
	blocker := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "test-pod", Namespace: ns},
		Spec: corev1.PodSpec{
			NodeName:   "n1",
			Containers: []corev1.Container{{Name: "agnhost", Image: "busybox:1.36", Ports: []corev1.ContainerPort{port}}},
		},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, blocker, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 20*time.Second, func() bool {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, blocker.Name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning
	})

	const podName = "ss-0"
	sel := fields.OneTermEqualSelector("metadata.name", podName).String()
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	labels := map[string]string{"app": "ss"}
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "ss", Namespace: ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To[int32](1),
			ServiceName: "test",
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeName:   "n1",
					Containers: []corev1.Container{{Name: "webserver", Image: "busybox:1.36", Ports: []corev1.ContainerPort{port}}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().StatefulSets(ns).Create(ctx, set, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The set's pod is rejected and deleted at least once.
	var first types.UID
	var rejected *corev1.Pod
	timeout := time.After(30 * time.Second)
	for deleted := false; !deleted; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("watch closed")
			}
			p, _ := ev.Object.(*corev1.Pod)
			if p == nil {
				continue
			}
			if first == "" {
				first = p.UID
			}
			if p.Status.Phase == corev1.PodFailed && rejected == nil {
				rejected = p.DeepCopy()
			}
			if ev.Type == watch.Deleted && first != "" {
				deleted = true
			}
		case <-timeout:
			t.Fatalf("pod %s was not deleted to be recreated (first uid %q, rejected %v)", podName, first, rejected != nil)
		}
	}
	if rejected == nil {
		t.Fatal("the set's pod was deleted without having failed")
	}
	if rejected.Status.Reason != "NodePorts" || rejected.Status.Message != "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports" {
		t.Errorf("rejected pod status: reason %q message %q", rejected.Status.Reason, rejected.Status.Message)
	}
	if n := len(sandboxesOf(rt, rejected.UID)); n != 0 {
		t.Errorf("rejected pod has %d sandboxes, want none", n)
	}

	if err := cs.CoreV1().Pods(ns).Delete(ctx, blocker.Name, *metav1.NewDeleteOptions(0)); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, func() bool {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning && p.UID != first
	})
	if _, err := cs.CoreV1().Pods(ns).Get(ctx, blocker.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("blocker pod still there: %v", err)
	}
}

// sandboxesOf lists the fake runtime's sandboxes of pod uid.
func sandboxesOf(rt *critest.FakeRuntimeService, uid types.UID) []string {
	rt.Lock()
	defer rt.Unlock()
	var out []string
	for id, s := range rt.Sandboxes {
		if s.Labels["io.kubernetes.pod.uid"] == string(uid) {
			out = append(out, id)
		}
	}
	return out
}

// startFakeRuntimeKubelet runs skiff's kubelet for node on a fake CRI
// runtime until ctx ends, and returns the runtime; the test's cleanup
// waits for the kubelet to stop.
func startFakeRuntimeKubelet(ctx context.Context, t *testing.T, c *framework.Cluster, node string) *critest.FakeRuntimeService {
	t.Helper()
	rt := critest.NewFakeRuntimeService()
	images := critest.NewFakeImageService()
	images.SetFakeImages([]string{"busybox:1.36"})
	k, err := kubelet.New(kubelet.Config{
		NodeName: node, NodeIP: "127.0.0.1", Client: c.Client, Runtime: rt, Images: images,
		RootDir: t.TempDir(), Volumes: emptyVolumes{},
		Env: func(context.Context, *corev1.Pod, *corev1.Container, kubelet.EnvInputs) ([]*runtimeapi.KeyValue, error) {
			return nil, nil
		},
		Expand:       func(s string, _ map[string]string) string { return s },
		RelistPeriod: 50 * time.Millisecond,
		SyncPeriod:   time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = k.Start(ctx) }()
	t.Cleanup(func() { <-stopped })
	return rt
}

// emptyVolumes is a kubelet.Volumes with nothing to set up.
type emptyVolumes struct{}

func (emptyVolumes) SetUp(context.Context, *corev1.Pod) error { return nil }
func (emptyVolumes) Mounts(*corev1.Pod, *corev1.Container, map[string]string) ([]*runtimeapi.Mount, error) {
	return nil, nil
}
func (emptyVolumes) TearDown(types.UID) error            { return nil }
func (emptyVolumes) PodUIDsOnDisk() ([]types.UID, error) { return nil, nil }
