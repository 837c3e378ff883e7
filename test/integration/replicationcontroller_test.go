package integration

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/controller/replication"
	"github.com/skiff-io/skiff/test/framework"
)

// rcPods lists the pods of app=app that are not being deleted.
func rcPods(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, app string) []corev1.Pod {
	t.Helper()
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// tableOf GETs path as a meta.k8s.io/v1 Table, as kubectl get does.
func tableOf(ctx context.Context, t *testing.T, cs kubernetes.Interface, path string) *metav1.Table {
	t.Helper()
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath(path).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
	if err != nil {
		t.Fatalf("GET %s as Table: %v", path, err)
	}
	var tbl metav1.Table
	if err := json.Unmarshal(raw, &tbl); err != nil {
		t.Fatalf("decode table: %v", err)
	}
	return &tbl
}

func columnNames(tbl *metav1.Table, wide bool) []string {
	var out []string
	for _, c := range tbl.ColumnDefinitions {
		if c.Priority == 0 || wide {
			out = append(out, c.Name)
		}
	}
	return out
}

// A ReplicationController is served with upstream's defaults, validation,
// discovery entry and table, and the replication manager keeps its pods
// and status: created from the template, scaled through /scale, counted
// Ready once their status says so.
func TestReplicationControllers(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers(replication.Name))
	ctx := ctxT(t)
	cs := c.Client
	const ns = "rc"
	mustNamespace(t, cs, ns)
	rcs := cs.CoreV1().ReplicationControllers(ns)

	// Discovery: short name and category, status and scale.
	list, err := cs.Discovery().ServerResourcesForGroupVersion("v1")
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var subs []string
	for _, r := range list.APIResources {
		switch {
		case r.Name == "replicationcontrollers":
			if !slices.Equal(r.ShortNames, []string{"rc"}) || !slices.Equal(r.Categories, []string{"all"}) || !r.Namespaced || r.Kind != "ReplicationController" {
				t.Errorf("discovery entry %+v", r)
			}
		case strings.HasPrefix(r.Name, "replicationcontrollers/"):
			subs = append(subs, r.Name)
			if r.Name == "replicationcontrollers/scale" && (r.Group != "autoscaling" || r.Version != "v1" || r.Kind != "Scale") {
				t.Errorf("scale entry %+v", r)
			}
		}
	}
	slices.Sort(subs)
	if diff := cmp.Diff([]string{"replicationcontrollers/scale", "replicationcontrollers/status"}, subs); diff != "" {
		t.Errorf("subresources (-want +got):\n%s", diff)
	}

	// Create: selector, labels and replicas defaulted; status a client
	// sends is dropped.
	labels := map[string]string{"app": "web"}
	rc, err := rcs.Create(ctx, &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ReplicationControllerSpec{Template: &corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
		}},
		Status: corev1.ReplicationControllerStatus{Replicas: 5, ReadyReplicas: 5},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if !cmp.Equal(rc.Spec.Selector, labels) || !cmp.Equal(rc.Labels, labels) || rc.Spec.Replicas == nil || *rc.Spec.Replicas != 1 ||
		rc.Generation != 1 || rc.Status.Replicas != 0 || rc.Status.ReadyReplicas != 0 {
		t.Fatalf("created: labels %v, spec %+v, generation %d, status %+v", rc.Labels, rc.Spec, rc.Generation, rc.Status)
	}
	if p := rc.Spec.Template.Spec; p.RestartPolicy != corev1.RestartPolicyAlways || p.Containers[0].ImagePullPolicy != corev1.PullAlways {
		t.Errorf("template not defaulted: %+v", p)
	}

	// The replication manager creates its pod.
	framework.Eventually(t, 30*time.Second, func() bool { return len(rcPods(ctx, t, cs, ns, "web")) == 1 })
	pod := rcPods(ctx, t, cs, ns, "web")[0]
	if ref := metav1.GetControllerOf(&pod); ref == nil || ref.Kind != "ReplicationController" || ref.APIVersion != "v1" || ref.UID != rc.UID {
		t.Fatalf("pod %s controller %+v", pod.Name, ref)
	}

	// Scale to 3 through /scale (autoscaling/v1).
	scale, err := rcs.GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil || scale.Spec.Replicas != 1 || scale.Status.Selector != "app=web" {
		t.Fatalf("get scale: %v %+v", err, scale)
	}
	// The Scale carries the resourceVersion, which the manager's status
	// writes move on.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := rcs.GetScale(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.Replicas = 3
		scale, err = rcs.UpdateScale(ctx, "web", cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil || scale.Spec.Replicas != 3 {
		t.Fatalf("update scale: %v %+v", err, scale)
	}
	var pods []corev1.Pod
	framework.Eventually(t, 30*time.Second, func() bool {
		pods = rcPods(ctx, t, cs, ns, "web")
		return len(pods) == 3
	})
	// The scheduler binds the pods meanwhile: mark the latest copy.
	for _, p := range pods {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := cs.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			_, err = framework.SetRunningReady(ctx, cs, cur)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	framework.Eventually(t, 30*time.Second, func() bool {
		rc, err = rcs.Get(ctx, "web", metav1.GetOptions{})
		s := rc.Status
		return err == nil && rc.Generation == 2 && s.Replicas == 3 && s.FullyLabeledReplicas == 3 &&
			s.ReadyReplicas == 3 && s.AvailableReplicas == 3 && s.ObservedGeneration == 2
	})
	if scale, err = rcs.GetScale(ctx, "web", metav1.GetOptions{}); err != nil || scale.Status.Replicas != 3 {
		t.Errorf("scale status after scaling: %v %+v", err, scale)
	}

	// status.replicas is a field selector.
	if l, err := rcs.List(ctx, metav1.ListOptions{FieldSelector: "status.replicas=3"}); err != nil || len(l.Items) != 1 {
		t.Errorf("list by status.replicas=3: %v, %d items", err, len(l.Items))
	}

	// The table kubectl prints, -o wide columns included.
	tbl := tableOf(ctx, t, cs, "/api/v1/namespaces/"+ns+"/replicationcontrollers")
	if diff := cmp.Diff([]string{"Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"}, columnNames(tbl, true)); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Name", "Desired", "Current", "Ready", "Age"}, columnNames(tbl, false)); diff != "" {
		t.Errorf("default columns (-want +got):\n%s", diff)
	}
	if len(tbl.Rows) != 1 {
		t.Fatalf("%d rows", len(tbl.Rows))
	}
	cells := tbl.Rows[0].Cells
	cells[4] = "age" // Age depends on the clock.
	if diff := cmp.Diff([]interface{}{"web", 3.0, 3.0, 3.0, "age", "web", "nginx", "app=web"}, cells); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}

	// Validation, with upstream's messages.
	bad := rc.DeepCopy()
	bad.Spec.Selector = map[string]string{"app": "db"}
	_, err = rcs.Update(ctx, bad, metav1.UpdateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`") {
		t.Errorf("selector mismatch: %v", err)
	}
	_, err = rcs.Create(ctx, &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "empty"},
		Spec: corev1.ReplicationControllerSpec{Template: &corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}}},
	}, metav1.CreateOptions{})
	for _, want := range []string{"spec.selector: Required value", `spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"`} {
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("create without labels: want %q in %v", want, err)
		}
	}

	// A status write keeps the spec.
	var st *corev1.ReplicationController
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := rcs.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.Replicas = ptr.To[int32](9)
		cur.Status.Replicas = 4
		st, err = rcs.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("update status: %v", err)
	}
	if *st.Spec.Replicas != 3 || st.Generation != 2 || st.Status.Replicas != 4 {
		t.Errorf("after a status write: spec.replicas %d, generation %d, status.replicas %d", *st.Spec.Replicas, st.Generation, st.Status.Replicas)
	}
}

// PodTemplates are served: create (defaulted, generation 1), get, list,
// update (generation counts template changes), watch, server-side apply,
// the kubectl table, a cluster-wide list that pages with a continue token,
// delete and deletecollection.
func TestPodTemplates(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	for _, ns := range []string{"pt-a", "pt-b"} {
		mustNamespace(t, cs, ns)
	}
	pts := cs.CoreV1().PodTemplates("pt-a")

	w, err := pts.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()

	tmpl := &corev1.PodTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}},
		},
	}
	created, err := pts.Create(ctx, tmpl, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if s := created.Template.Spec; created.Generation != 1 || s.RestartPolicy != corev1.RestartPolicyAlways ||
		s.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent || s.TerminationGracePeriodSeconds == nil {
		t.Errorf("created: generation %d, spec %+v", created.Generation, s)
	}
	select {
	case ev := <-w.ResultChan():
		if pt, ok := ev.Object.(*corev1.PodTemplate); ev.Type != watch.Added || !ok || pt.Name != "web" {
			t.Errorf("watch event %s %T", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Error("no watch event for the created template")
	}

	got, err := pts.Get(ctx, "web", metav1.GetOptions{})
	if err != nil || got.UID != created.UID {
		t.Fatalf("get: %v", err)
	}
	got.Template.Spec.Containers[0].Image = "nginx:1.28"
	if got, err = pts.Update(ctx, got, metav1.UpdateOptions{}); err != nil || got.Generation != 2 {
		t.Fatalf("update: %v, generation %d", err, got.Generation)
	}
	got.Labels = map[string]string{"x": "y"}
	if got, err = pts.Update(ctx, got, metav1.UpdateOptions{}); err != nil || got.Generation != 2 {
		t.Fatalf("label update: %v, generation %d", err, got.Generation)
	}

	_, err = pts.Create(ctx, &corev1.PodTemplate{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "template.spec.containers[0].image: Required value") {
		t.Errorf("template without an image: %v", err)
	}

	// Server-side apply, in the other namespace.
	applied, err := cs.CoreV1().PodTemplates("pt-b").Apply(ctx, corev1ac.PodTemplate("db", "pt-b").
		WithTemplate(corev1ac.PodTemplateSpec().WithLabels(map[string]string{"app": "db"}).
			WithSpec(corev1ac.PodSpec().WithContainers(corev1ac.Container().WithName("db").WithImage("postgres:17")))),
		metav1.ApplyOptions{FieldManager: "test", Force: true})
	if err != nil || applied.Generation != 1 || len(applied.ManagedFields) == 0 {
		t.Fatalf("apply: %v %+v", err, applied)
	}
	if _, err := cs.CoreV1().PodTemplates("pt-b").Create(ctx, &corev1.PodTemplate{ObjectMeta: metav1.ObjectMeta{Name: "cache"},
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "redis"}}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create cache: %v", err)
	}

	tbl := tableOf(ctx, t, cs, "/api/v1/namespaces/pt-a/podtemplates")
	if diff := cmp.Diff([]string{"Name", "Containers", "Images", "Pod Labels"}, columnNames(tbl, false)); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	if len(tbl.Rows) != 1 || !cmp.Equal(tbl.Rows[0].Cells, []interface{}{"web", "web", "nginx:1.28", "app=web"}) {
		t.Errorf("rows %+v", tbl.Rows)
	}

	// The cluster-wide list pages: limit=1 gives one item and a continue
	// token, and following the tokens gives the three templates once.
	var names []string
	opts := metav1.ListOptions{Limit: 1}
	for page := 0; ; page++ {
		l, err := cs.CoreV1().PodTemplates("").List(ctx, opts)
		if err != nil {
			t.Fatalf("list page %d: %v", page, err)
		}
		if len(l.Items) != 1 {
			t.Fatalf("page %d: %d items, want 1", page, len(l.Items))
		}
		names = append(names, l.Items[0].Namespace+"/"+l.Items[0].Name)
		if l.Continue == "" {
			break
		}
		if page > 3 {
			t.Fatal("continue tokens do not end")
		}
		opts.Continue = l.Continue
	}
	if diff := cmp.Diff([]string{"pt-a/web", "pt-b/cache", "pt-b/db"}, names); diff != "" {
		t.Errorf("paged list (-want +got):\n%s", diff)
	}

	if err := pts.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := pts.Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after delete: %v", err)
	}
	if err := cs.CoreV1().PodTemplates("pt-b").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatalf("deletecollection: %v", err)
	}
	if l, err := cs.CoreV1().PodTemplates("").List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Errorf("after deletecollection: %v, %d left", err, len(l.Items))
	}
}
