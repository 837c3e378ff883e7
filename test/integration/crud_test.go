// Package integration drives the real control plane, started in-process on
// embedded etcd, with client-go.
package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-io/skiff/test/framework"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustNamespace(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

func TestCRUD(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "crud")
	cms := cs.CoreV1().ConfigMaps("crud")

	created, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "one", Labels: map[string]string{"app": "x"}}, Data: map[string]string{"a": "1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.UID == "" || created.ResourceVersion == "" || created.CreationTimestamp.IsZero() {
		t.Fatalf("create did not fill uid/resourceVersion/creationTimestamp: %+v", created.ObjectMeta)
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "one"}}, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("second create: want AlreadyExists, got %v", err)
	}
	gen, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "gen-"}}, metav1.CreateOptions{})
	if err != nil || len(gen.Name) != len("gen-")+5 {
		t.Fatalf("generateName: got %q, %v", gen.GetName(), err)
	}

	got, err := cms.Get(ctx, "one", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if diff := cmp.Diff(created.Data, got.Data); diff != "" {
		t.Fatalf("get data (-want +got):\n%s", diff)
	}

	// Update with the current resourceVersion works; with the old one
	// conflicts.
	got.Data["b"] = "2"
	updated, err := cms.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if updated.ResourceVersion == created.ResourceVersion {
		t.Fatal("update did not change resourceVersion")
	}
	stale := created.DeepCopy()
	stale.Data["c"] = "3"
	if _, err := cms.Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("stale update: want Conflict, got %v", err)
	}

	// The three patch types.
	for _, tc := range []struct {
		pt    types.PatchType
		patch string
		key   string
	}{
		{types.MergePatchType, `{"data":{"merge":"yes"}}`, "merge"},
		{types.StrategicMergePatchType, `{"data":{"smp":"yes"}}`, "smp"},
		{types.JSONPatchType, `[{"op":"add","path":"/data/json","value":"yes"}]`, "json"},
	} {
		p, err := cms.Patch(ctx, "one", tc.pt, []byte(tc.patch), metav1.PatchOptions{})
		if err != nil {
			t.Fatalf("patch %s: %v", tc.pt, err)
		}
		if p.Data[tc.key] != "yes" {
			t.Fatalf("patch %s: data = %v", tc.pt, p.Data)
		}
	}

	// Dry run stores nothing.
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dry"}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("dry-run create: %v", err)
	}
	if _, err := cms.Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("dry-run object stored: %v", err)
	}

	// Label selectors and field selectors.
	list, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "app=x"})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "one" {
		t.Fatalf("label selector list: %v %v", err, list)
	}
	list, err = cms.List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + gen.Name})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("field selector list: %v %v", err, list)
	}
	if _, err := cms.List(ctx, metav1.ListOptions{FieldSelector: "spec.nope=1"}); !apierrors.IsBadRequest(err) {
		t.Fatalf("unknown field selector: want BadRequest, got %v", err)
	}

	if err := cms.Delete(ctx, "one", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := cms.Get(ctx, "one", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get after delete: want NotFound, got %v", err)
	}
	if err := cms.Delete(ctx, "one", metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("second delete: want NotFound, got %v", err)
	}
}

func TestDefaultingStatusAndScale(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "apps")
	labels := map[string]string{"app": "web"}
	d, err := cs.AppsV1().Deployments("apps").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType ||
		d.Spec.RevisionHistoryLimit == nil || *d.Spec.RevisionHistoryLimit != 10 || d.Generation != 1 {
		t.Fatalf("deployment not defaulted: %+v", d.Spec)
	}
	if got := d.Spec.Template.Spec.Containers[0].ImagePullPolicy; got != corev1.PullAlways {
		t.Errorf("imagePullPolicy for an untagged image = %q, want Always", got)
	}

	// Status writes ignore spec; spec writes ignore status.
	d.Status.Replicas = 7
	d.Spec.Paused = true
	s, err := cs.AppsV1().Deployments("apps").UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update status: %v", err)
	}
	if s.Status.Replicas != 7 || s.Spec.Paused || s.Generation != 1 {
		t.Fatalf("status update: status.replicas=%d paused=%v generation=%d", s.Status.Replicas, s.Spec.Paused, s.Generation)
	}
	s.Status.Replicas = 0
	s.Spec.Paused = true
	u, err := cs.AppsV1().Deployments("apps").Update(ctx, s, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if u.Status.Replicas != 7 || !u.Spec.Paused || u.Generation != 2 {
		t.Fatalf("spec update: status.replicas=%d paused=%v generation=%d", u.Status.Replicas, u.Spec.Paused, u.Generation)
	}

	scale, err := cs.AppsV1().Deployments("apps").GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil || scale.Spec.Replicas != 1 || scale.Status.Selector != "app=web" {
		t.Fatalf("get scale: %v %+v", err, scale)
	}
	scale.Spec.Replicas = 5
	if _, err := cs.AppsV1().Deployments("apps").UpdateScale(ctx, "web", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update scale: %v", err)
	}
	d, _ = cs.AppsV1().Deployments("apps").Get(ctx, "web", metav1.GetOptions{})
	if *d.Spec.Replicas != 5 {
		t.Fatalf("replicas after scale = %d", *d.Spec.Replicas)
	}

	// Immutable selector.
	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}}
	d.Spec.Template.Labels = map[string]string{"app": "other"}
	if _, err := cs.AppsV1().Deployments("apps").Update(ctx, d, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("selector change: want Invalid, got %v", err)
	}
}

func TestServicesGetClusterIPs(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "svc")
	seen := map[string]bool{}
	for i := 0; i < 5; i++ {
		svc, err := cs.CoreV1().Services("svc").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%d", i)},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create service: %v", err)
		}
		ip := svc.Spec.ClusterIP
		if ip == "" || seen[ip] || ip[:6] != "10.43." {
			t.Fatalf("service %d got clusterIP %q (seen %v)", i, ip, seen)
		}
		seen[ip] = true
		if np := svc.Spec.Ports[0].NodePort; np < 30000 || np > 32767 {
			t.Fatalf("nodePort %d out of range", np)
		}
	}
	kube, err := cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || kube.Spec.ClusterIP != "10.43.0.1" {
		t.Fatalf("kubernetes service: %v %v", err, kube)
	}
	_, err = cs.CoreV1().Services("svc").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "taken"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.43.0.1", Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("taken clusterIP: want Invalid, got %v", err)
	}
}

func TestNamespaceLifecycle(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers("namespace"))
	ctx := ctxT(t)
	cs := c.Client
	if _, err := cs.CoreV1().ConfigMaps("missing").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("create in missing namespace: want NotFound, got %v", err)
	}
	mustNamespace(t, cs, "doomed")
	for i := 0; i < 3; i++ {
		if _, err := cs.CoreV1().ConfigMaps("doomed").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("c%d", i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A finalizer keeps one object, and so the namespace, around.
	if _, err := cs.CoreV1().Secrets("doomed").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete namespace: %v", err)
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, "doomed", metav1.GetOptions{})
	if err != nil || ns.Status.Phase != corev1.NamespaceTerminating {
		t.Fatalf("namespace after delete: %v phase=%v", err, ns.Status.Phase)
	}
	if _, err := cs.CoreV1().ConfigMaps("doomed").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late"}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("create in terminating namespace: want Forbidden, got %v", err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		l, err := cs.CoreV1().ConfigMaps("doomed").List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 0, nil
	})
	if err != nil {
		t.Fatalf("configmaps not deleted: %v", err)
	}
	// The namespace controller deletes kinds one after another: the held
	// secret may get its deletionTimestamp after the configmaps are gone.
	var held *corev1.Secret
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var gerr error
		held, gerr = cs.CoreV1().Secrets("doomed").Get(ctx, "held", metav1.GetOptions{})
		return gerr == nil && held.DeletionTimestamp != nil, nil
	})
	if err != nil {
		t.Fatalf("held secret never marked for deletion: %v %+v", err, held)
	}
	held.Finalizers = nil
	if _, err := cs.CoreV1().Secrets("doomed").Update(ctx, held, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("removing finalizer: %v", err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, "doomed", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("namespace not deleted: %v", err)
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, "kube-system", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("deleting kube-system: want Forbidden, got %v", err)
	}
}

func TestPodGracefulDeletion(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "pods")
	pods := cs.CoreV1().Pods("pods")
	mk := func(name, node string) {
		_, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create pod %s: %v", name, err)
		}
	}
	mk("unbound", "")
	mk("bound", "node-1")
	if err := pods.Delete(ctx, "unbound", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "unbound", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("pod without node: want deleted at once, got %v", err)
	}
	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := pods.Get(ctx, "bound", metav1.GetOptions{})
	if err != nil || p.DeletionTimestamp == nil || p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != 30 {
		t.Fatalf("bound pod: want graceful deletion with 30s, got %v %+v", err, p)
	}
	zero := int64(0)
	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "bound", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("grace 0 delete: want gone, got %v", err)
	}
	// Binding assigns a pod once.
	mk("tobind", "")
	err = pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "tobind"}, Target: corev1.ObjectReference{Kind: "Node", Name: "node-2"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("bind: %v", err)
	}
	p, _ = pods.Get(ctx, "tobind", metav1.GetOptions{})
	if p.Spec.NodeName != "node-2" {
		t.Fatalf("after bind nodeName = %q", p.Spec.NodeName)
	}
	err = pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "tobind"}, Target: corev1.ObjectReference{Kind: "Node", Name: "node-3"}}, metav1.CreateOptions{})
	if !apierrors.IsConflict(err) {
		t.Fatalf("second bind: want Conflict, got %v", err)
	}
	// Pod field selectors.
	l, err := pods.List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=node-2"})
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("spec.nodeName selector: %v %d", err, len(l.Items))
	}
}
