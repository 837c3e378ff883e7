package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/skiff-io/skiff/test/framework"
)

// pods/resize as upstream serves it and its conformance tests ("resize
// pod via the replace endpoint", the patch ones) use it: discovery lists
// it; GET returns the pod; PUT, strategic merge and JSON patches change
// only container resources, bumping the generation; a refused change is
// a 422 Invalid Status with upstream's message; ResourceQuota
// charges it. No kubelet runs: the pod
// is bound to a node by name and has no container status yet.
func TestPodResizeAPI(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers("resourcequota"))
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "rsz")
	pods := cs.CoreV1().Pods("rsz")
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}

	rl, err := cs.Discovery().ServerResourcesForGroupVersion("v1")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rl.APIResources {
		if r.Name == "pods/resize" {
			found = true
			if r.Kind != "Pod" || strings.Join(r.Verbs, ",") != "get,patch,update" {
				t.Errorf("discovery of pods/resize: kind %q verbs %v, want Pod [get patch update]", r.Kind, r.Verbs)
			}
		}
	}
	if !found {
		t.Error("discovery does not list pods/resize")
	}

	q := resource.MustParse
	pod, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			NodeName: "n1",
			Containers: []corev1.Container{{Name: "c1", Image: "busybox:1.36", Command: []string{"sleep", "3600"},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: q("20m"), corev1.ResourceMemory: q("35Mi")}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("get", func(t *testing.T) {
		u, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Namespace("rsz").Get(ctx, "web", metav1.GetOptions{}, "resize")
		if err != nil {
			t.Fatal(err)
		}
		p := &corev1.Pod{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, p); err != nil {
			t.Fatal(err)
		}
		if p.Kind != "Pod" || p.UID != pod.UID || p.ResourceVersion != pod.ResourceVersion {
			t.Fatalf("GET pods/web/resize: kind %q uid %s rv %s", p.Kind, p.UID, p.ResourceVersion)
		}
	})

	t.Run("update writes only resources", func(t *testing.T) {
		cur, err := pods.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Labels["app"] = "changed"
		cur.Spec.Containers[0].Image = "busybox:1.37"
		cur.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: q("25m"), corev1.ResourceMemory: q("40Mi")}
		got, err := pods.UpdateResize(ctx, "web", cur, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("PUT pods/web/resize: %v", err)
		}
		if got.Generation != 2 || got.Labels["app"] != "web" || got.Spec.Containers[0].Image != "busybox:1.36" {
			t.Fatalf("after the update: generation %d labels %v image %q", got.Generation, got.Labels, got.Spec.Containers[0].Image)
		}
		if r := got.Spec.Containers[0].Resources.Requests; r.Cpu().MilliValue() != 25 || r.Memory().Value() != 40<<20 {
			t.Fatalf("requests %v", r)
		}
	})

	t.Run("strategic merge patch adds a limit", func(t *testing.T) {
		got, err := pods.Patch(ctx, "web", types.StrategicMergePatchType,
			[]byte(`{"spec":{"containers":[{"name":"c1","resources":{"limits":{"cpu":"35m"}}}]}}`), metav1.PatchOptions{}, "resize")
		if err != nil {
			t.Fatal(err)
		}
		if got.Generation != 3 || got.Spec.Containers[0].Resources.Limits.Cpu().MilliValue() != 35 {
			t.Fatalf("generation %d resources %+v", got.Generation, got.Spec.Containers[0].Resources)
		}
	})

	t.Run("json patch", func(t *testing.T) {
		got, err := pods.Patch(ctx, "web", types.JSONPatchType,
			[]byte(`[{"op":"replace","path":"/spec/containers/0/resources/requests/memory","value":"30Mi"}]`), metav1.PatchOptions{}, "resize")
		if err != nil {
			t.Fatal(err)
		}
		if got.Generation != 4 || got.Spec.Containers[0].Resources.Requests.Memory().Value() != 30<<20 {
			t.Fatalf("generation %d resources %+v", got.Generation, got.Spec.Containers[0].Resources)
		}
	})

	for _, tc := range []struct {
		name, patch, msg string
	}{
		{"remove a limit", `{"spec":{"containers":[{"name":"c1","resources":{"limits":null}}]}}`,
			`Pod "web" is invalid: spec.containers[0].resources.limits: Forbidden: resource limits cannot be removed`},
		{"change the QoS class", `{"spec":{"containers":[{"name":"c1","resources":{"requests":{"cpu":"35m","memory":"30Mi"},"limits":{"memory":"30Mi"}}}]}}`,
			`Pod "web" is invalid: spec: Invalid value: "Burstable": Pod QOS Class may not change as a result of resizing`},
		{"ephemeral storage", `{"spec":{"containers":[{"name":"c1","resources":{"requests":{"ephemeral-storage":"1Gi"}}}]}}`,
			`Pod "web" is invalid: spec: Forbidden: only cpu and memory resources are mutable`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pods.Patch(ctx, "web", types.StrategicMergePatchType, []byte(tc.patch), metav1.PatchOptions{}, "resize")
			var st apierrors.APIStatus
			if err == nil || !apierrors.IsInvalid(err) {
				t.Fatalf("got %v, want 422 Invalid", err)
			}
			st = err.(apierrors.APIStatus)
			if s := st.Status(); s.Code != http.StatusUnprocessableEntity || s.Message != tc.msg {
				t.Fatalf("status %d %q, want 422 %q", s.Code, s.Message, tc.msg)
			}
		})
	}

	// ResourceQuota charges a resize, as upstream's pod evaluator
	// handles pods/resize updates.
	t.Run("quota", func(t *testing.T) {
		_, err := cs.CoreV1().ResourceQuotas("rsz").Create(ctx, &corev1.ResourceQuota{
			ObjectMeta: metav1.ObjectMeta{Name: "cpu"},
			Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceRequestsCPU: q("30m")}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 20*time.Second, func() bool {
			rq, err := cs.CoreV1().ResourceQuotas("rsz").Get(ctx, "cpu", metav1.GetOptions{})
			return err == nil && rq.Status.Used.Name(corev1.ResourceRequestsCPU, resource.DecimalSI).MilliValue() == 25
		})
		_, err = pods.Patch(ctx, "web", types.StrategicMergePatchType,
			[]byte(`{"spec":{"containers":[{"name":"c1","resources":{"requests":{"cpu":"35m"}}}]}}`), metav1.PatchOptions{}, "resize")
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "exceeded quota: cpu") {
			t.Fatalf("resize beyond the quota: %v, want 403 exceeded quota", err)
		}
		if _, err := pods.Patch(ctx, "web", types.StrategicMergePatchType,
			[]byte(`{"spec":{"containers":[{"name":"c1","resources":{"requests":{"cpu":"30m"}}}]}}`), metav1.PatchOptions{}, "resize"); err != nil {
			t.Fatalf("resize within the quota: %v", err)
		}
	})
}
