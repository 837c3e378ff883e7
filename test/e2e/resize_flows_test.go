package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/dynamic"

	"github.com/skiff-io/skiff/test/framework"
)

// resizeCtr is one container of a resize flow: its cpu and memory
// requests and limits ("" for none), as upstream's e2e describes them.
type resizeCtr struct{ name, cpuReq, cpuLim, memReq, memLim string }

func (c resizeCtr) requirements() corev1.ResourceRequirements {
	var r corev1.ResourceRequirements
	set := func(rl *corev1.ResourceList, n corev1.ResourceName, v string) {
		if v == "" {
			return
		}
		if *rl == nil {
			*rl = corev1.ResourceList{}
		}
		(*rl)[n] = resource.MustParse(v)
	}
	set(&r.Requests, corev1.ResourceCPU, c.cpuReq)
	set(&r.Requests, corev1.ResourceMemory, c.memReq)
	set(&r.Limits, corev1.ResourceCPU, c.cpuLim)
	set(&r.Limits, corev1.ResourceMemory, c.memLim)
	return r
}

func resizePod(name string, cs []resizeCtr) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyOnFailure,
			TerminationGracePeriodSeconds: new(int64),
		},
	}
	for _, c := range cs {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{
			Name: c.name, Image: "docker.io/library/busybox:1.36", Command: []string{"sh", "-c", "sleep 1d"},
			Resources: c.requirements(),
		})
	}
	return p
}

// TestPodResizeUpstreamFlows runs, on a real node, the flows of
// upstream's conformance tests "Pod InPlace Resize Container burstable
// pods - extended 6 containers", "... resize with equivalents" and
// "... resize pod via the replace endpoint", with their checks: a
// two-way strategic merge patch (or a PUT) of pods/resize; then
// observedGeneration caught up, no resize condition, the pod Ready; each
// container's status.resources and allocatedResources equal to the
// desired ones (go-cmp, as gomega's BeComparableTo: a missing list is not
// an empty one); no restart; and, read inside each container, the memory
// limit, the CFS quota (upstream's MilliCPUToQuota, -1 without a limit)
// and a positive cpu.shares.
func TestPodResizeUpstreamFlows(t *testing.T) {
	if why := framework.CanRunContainers(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	images := t.TempDir()
	framework.BuildImages(t, images)
	network := framework.NewNetwork(t, "skrsz1", "10.199.92.0/24")
	c := framework.StartNodeIn(t, skiffBin, images, network.AddNode(t, "skrsz-node1"))
	k := kubectl{t: t, c: c}
	ctx := context.Background()
	pods := c.Client.CoreV1().Pods("default")

	create := func(t *testing.T, name string, cs []resizeCtr) *corev1.Pod {
		t.Helper()
		p, err := pods.Create(ctx, resizePod(name, cs), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pods.Delete(context.Background(), name, metav1.DeleteOptions{}) })
		k.waitFor(t, name+" Ready", 90*time.Second, func() (bool, string) {
			s := k.jsonpath("pod/"+name, `{.status.conditions[?(@.type=="Ready")].status}`)
			return s == "True", s
		})
		verifyResized(t, k, name, cs)
		return p
	}
	patch := func(t *testing.T, name string, from, to []resizeCtr) {
		t.Helper()
		a, _ := json.Marshal(resizePod("", from))
		b, _ := json.Marshal(resizePod("", to))
		p, err := strategicpatch.CreateTwoWayMergePatch(a, b, corev1.Pod{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pods.Patch(ctx, name, types.StrategicMergePatchType, p, metav1.PatchOptions{}, "resize"); err != nil {
			t.Fatalf("patch %s: %v", p, err)
		}
		verifyResized(t, k, name, to)
	}

	t.Run("burstable 6 containers - various operations", func(t *testing.T) {
		from := []resizeCtr{
			{name: "c1", cpuReq: "20m"},
			{name: "c2", memReq: "35Mi"},
			{name: "c3", cpuReq: "20m", memReq: "35Mi"},
			{name: "c4", cpuReq: "20m"},
			{name: "c5", memReq: "35Mi"},
		}
		to := []resizeCtr{
			{name: "c1", cpuReq: "25m", cpuLim: "35m"},
			{name: "c2", memReq: "30Mi", memLim: "50Mi"},
			{name: "c3", cpuReq: "20m", memReq: "30Mi"},
			{name: "c4", cpuReq: "15m", memReq: "35Mi"},
			{name: "c5", cpuReq: "20m", memReq: "40Mi"},
		}
		create(t, "six", from)
		patch(t, "six", from, to)
	})

	t.Run("burstable resize with equivalents", func(t *testing.T) {
		from := []resizeCtr{{name: "c1", cpuReq: "2m", cpuLim: "10m"}}
		to := []resizeCtr{{name: "c1", cpuReq: "1m", cpuLim: "5m"}}
		create(t, "equiv", from)
		patch(t, "equiv", from, to)
		patch(t, "equiv", to, from)
	})

	t.Run("resize via the replace endpoint", func(t *testing.T) {
		from := []resizeCtr{{name: "c1", cpuReq: "20m", memReq: "35Mi"}}
		to := []resizeCtr{{name: "c1", cpuReq: "25m", memReq: "40Mi"}}
		create(t, "replace", from)
		cur, err := pods.Get(ctx, "replace", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec.Containers[0].Resources = to[0].requirements()
		if _, err := pods.UpdateResize(ctx, "replace", cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := pods.Get(ctx, "replace", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Generation != 2 {
			t.Fatalf("generation %d, want 2", got.Generation)
		}
		verifyResized(t, k, "replace", to)
		dyn, err := dynamic.NewForConfig(c.Config)
		if err != nil {
			t.Fatal(err)
		}
		u, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Namespace("default").Get(ctx, "replace", metav1.GetOptions{}, "resize")
		if err != nil {
			t.Fatal(err)
		}
		fromResize := &corev1.Pod{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, fromResize); err != nil {
			t.Fatal(err)
		}
		main, err := pods.Get(ctx, "replace", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		main.Kind, main.APIVersion = "Pod", "v1"
		if !apiequality.Semantic.DeepEqual(main, fromResize) {
			t.Fatalf("pod from the resize subresource differs: %s", cmp.Diff(main, fromResize))
		}
	})
}

// verifyResized waits for the resize of pod name to cs to be done and
// checks its status and cgroups as upstream's conformance tests do.
func verifyResized(t *testing.T, k kubectl, name string, cs []resizeCtr) {
	t.Helper()
	ctx := context.Background()
	var pod *corev1.Pod
	k.waitFor(t, name+" resized", 90*time.Second, func() (bool, string) {
		p, err := k.c.Client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if p.Status.ObservedGeneration < p.Generation {
			return false, fmt.Sprintf("observedGeneration %d < generation %d", p.Status.ObservedGeneration, p.Generation)
		}
		ready := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodResizePending || c.Type == corev1.PodResizeInProgress {
				return false, fmt.Sprintf("condition %s %s %s", c.Type, c.Reason, c.Message)
			}
			ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
		}
		pod = p
		return ready, "not ready"
	})
	for i, want := range cs {
		st := pod.Status.ContainerStatuses[i]
		r := want.requirements()
		if st.Name != want.name || st.Resources == nil || !cmp.Equal(*st.Resources, r) || !cmp.Equal(st.AllocatedResources, r.Requests) || st.RestartCount != 0 {
			t.Errorf("container %s: resources %+v allocated %v restarts %d; want %+v", want.name, st.Resources, st.AllocatedResources, st.RestartCount, r)
		}
		read := func(file string) string {
			return strings.TrimSpace(k.ok("exec", name, "-c", want.name, "--", "head", "-n", "1", file))
		}
		if lim := r.Limits.Memory().Value(); lim != 0 {
			if got := read("/sys/fs/cgroup/memory/memory.limit_in_bytes"); got != strconv.FormatInt(lim, 10) {
				t.Errorf("container %s memory limit %s, want %d", want.name, got, lim)
			}
		}
		quota := int64(-1)
		if m := r.Limits.Cpu().MilliValue(); m != 0 {
			quota = max(m*100, 1000)
		}
		if got := read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); got != strconv.FormatInt(quota, 10) {
			t.Errorf("container %s cfs quota %s, want %d", want.name, got, quota)
		}
		if got, _ := strconv.Atoi(read("/sys/fs/cgroup/cpu/cpu.shares")); got <= 0 {
			t.Errorf("container %s cpu.shares %d, want > 0", want.name, got)
		}
	}
}
