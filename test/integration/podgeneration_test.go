package integration

import (
	"net/http"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/test/framework"
)

// A pod's metadata.generation as upstream's conformance test "Pod
// Generation" checks it (test/e2e/node/pods.go): 1 on create whatever the
// client sent, one more per spec update, none for metadata, status or a
// client-set generation, and one more for a graceful deletion, which
// answers 200 with the pod. No kubelet runs: the pod is bound to a node
// by name and its status is written by the test.
func TestPodGeneration(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "gen")
	pods := cs.CoreV1().Pods("gen")

	pod, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: 100},
		Spec: corev1.PodSpec{
			NodeName:       "n1",
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox:1.36"}},
			Containers:     []corev1.Container{{Name: "app", Image: "nginx:1.27"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Generation != 1 {
		t.Fatalf("generation of a new pod = %d, want 1", pod.Generation)
	}

	want := int64(1)
	for _, tc := range []struct {
		name   string
		update func(*corev1.Pod)
		bump   bool
	}{
		{"empty update", func(*corev1.Pod) {}, false},
		{"tolerations", func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "foo", Operator: corev1.TolerationOpEqual, Value: "bar", Effect: corev1.TaintEffectNoSchedule})
		}, true},
		{"activeDeadlineSeconds", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](5000) }, true},
		{"container image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" }, true},
		{"init container image", func(p *corev1.Pod) { p.Spec.InitContainers[0].Image = "busybox:1.37" }, true},
		{"annotations", func(p *corev1.Pod) { p.Annotations = map[string]string{"key": "value"} }, false},
		{"client-set generation", func(p *corev1.Pod) { p.Generation = 1 }, false},
	} {
		p, err := pods.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tc.update(p)
		if _, err := pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if tc.bump {
			want++
		}
		if p, err = pods.Get(ctx, "web", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		if p.Generation != want {
			t.Errorf("%s: generation = %d, want %d", tc.name, p.Generation, want)
		}
	}

	// A status write, as the kubelet makes it, moves observedGeneration
	// but not the generation; one that leaves observedGeneration out
	// keeps it.
	p, err := pods.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.ObservedGeneration = want
	if p, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p.Status.ObservedGeneration = 0
	if p, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if p.Generation != want || p.Status.ObservedGeneration != want {
		t.Errorf("after status writes: generation %d, observedGeneration %d; want %d and %d", p.Generation, p.Status.ObservedGeneration, want, want)
	}

	// A graceful deletion, as the conformance test sends it.
	var deleted corev1.Pod
	code := deleteRaw(t, cs, "/api/v1/namespaces/gen/pods/web", "60", nil, &deleted)
	if code != http.StatusOK {
		t.Errorf("graceful DELETE answered %d, want 200", code)
	}
	want++
	if deleted.DeletionTimestamp == nil || deleted.Generation != want {
		t.Errorf("graceful DELETE returned deletionTimestamp %v, generation %d; want set and %d", deleted.DeletionTimestamp, deleted.Generation, want)
	}
	if p, err = pods.Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if p.Generation != want || p.DeletionTimestamp == nil {
		t.Errorf("after the graceful DELETE: generation %d, deletionTimestamp %v; want %d and set", p.Generation, p.DeletionTimestamp, want)
	}
	// Asking again changes nothing, and is 200 too.
	code = deleteRaw(t, cs, "/api/v1/namespaces/gen/pods/web", "60", nil, &deleted)
	if code != http.StatusOK || deleted.Generation != want {
		t.Errorf("second DELETE: %d, generation %d; want 200 and %d", code, deleted.Generation, want)
	}
}

// A DELETE answers 202 only as upstream's handler does: when the object is
// still there and the client set orphanDependents=false. Otherwise 200,
// with the object when it is still there (deletion held by finalizers)
// and the object's generation bumped once, as upstream's store does.
func TestDeleteStatusCode(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "del")

	// Deleted at once: 200 with a Success Status.
	if _, err := cs.CoreV1().ConfigMaps("del").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "now"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var st metav1.Status
	if code := deleteRaw(t, cs, "/api/v1/namespaces/del/configmaps/now", "", nil, &st); code != http.StatusOK || st.Status != metav1.StatusSuccess {
		t.Errorf("immediate DELETE: %d %+v, want 200 Success", code, st)
	}

	// Held by the foreground finalizer (no garbage collector runs): 200
	// with the object, its generation bumped.
	d, err := cs.AppsV1().Deployments("del").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var held appsv1.Deployment
	code := deleteRaw(t, cs, "/apis/apps/v1/namespaces/del/deployments/web", "",
		&metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}, &held)
	if code != http.StatusOK || held.DeletionTimestamp == nil || held.Generation != d.Generation+1 {
		t.Errorf("foreground DELETE: %d, deletionTimestamp %v, generation %d; want 200, set, %d", code, held.DeletionTimestamp, held.Generation, d.Generation+1)
	}

	// Held by a finalizer with orphanDependents=false: upstream's one 202.
	if _, err := cs.CoreV1().ConfigMaps("del").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	code = deleteRaw(t, cs, "/api/v1/namespaces/del/configmaps/held", "", &metav1.DeleteOptions{OrphanDependents: ptr.To(false)}, &cm)
	if code != http.StatusAccepted || cm.DeletionTimestamp == nil {
		t.Errorf("DELETE with orphanDependents=false: %d, deletionTimestamp %v; want 202 and set", code, cm.DeletionTimestamp)
	}
}

// deleteRaw sends DELETE to path with gracePeriodSeconds (when not "") and
// opts (when not nil) through client-go's REST client, decodes the answer
// into into, and returns the HTTP status code.
func deleteRaw(t *testing.T, cs kubernetes.Interface, path, grace string, opts *metav1.DeleteOptions, into runtime.Object) int {
	t.Helper()
	req := cs.CoreV1().RESTClient().Delete().AbsPath(path)
	if grace != "" {
		req = req.Param("gracePeriodSeconds", grace)
	}
	if opts != nil {
		req = req.Body(opts)
	}
	var code int
	if err := req.Do(ctxT(t)).StatusCode(&code).Into(into); err != nil {
		t.Fatalf("DELETE %s: %v", path, err)
	}
	return code
}
