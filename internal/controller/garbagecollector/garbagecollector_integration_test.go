package garbagecollector_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/controller/garbagecollector"
	"github.com/skiff-io/skiff/test/framework"
)

const ns = "default"

// env is a cluster with the collector running.
type env struct {
	ctx    context.Context
	client kubernetes.Interface
	dyn    dynamic.Interface
	gc     *garbagecollector.Controller
	// gate holds back the collector's view of one object when armed.
	gate *gate
}

func start(t *testing.T) *env {
	t.Helper()
	cluster := framework.StartInProcess(t, framework.WithControllers())
	client := cluster.NewClient(t)
	cfg := rest.CopyConfig(cluster.Config)
	cfg.QPS, cfg.Burst = 500, 1000
	e := &env{client: client, dyn: dynamic.NewForConfigOrDie(cfg), gate: &gate{}}
	// The collector discovers resources itself: it is built from the
	// rest config and ignores the factory.
	framework.RunController(t, client, record.NewFakeRecorder(100), func(_ kubernetes.Interface, _ informers.SharedInformerFactory, rec record.EventRecorder) (*garbagecollector.Controller, error) {
		gc, err := garbagecollector.New(cfg, rec)
		if err != nil {
			return nil, err
		}
		garbagecollector.HoldEvents(gc, e.gate.hold)
		e.gc = gc
		return gc, nil
	})
	// Registered after the controller's cleanup, so it runs first: a held
	// informer would keep the collector from stopping.
	t.Cleanup(e.gate.release)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	e.ctx = ctx
	return e
}

// TestMetadataClient checks that the server answers the metadata client
// (PartialObjectMetadata) the collector is built on, for GET, LIST and
// PATCH.
func TestMetadataClient(t *testing.T) {
	cluster := framework.StartInProcess(t, framework.WithControllers())
	cfg := cluster.Config
	mc := metadata.NewForConfigOrDie(cfg)
	ctx := context.Background()
	cms := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	cm, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().ConfigMaps(ns).Create(ctx,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "m", Annotations: map[string]string{"a": "b"}}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := mc.Resource(cms).Namespace(ns).Get(ctx, "m", metav1.GetOptions{})
	if err != nil || got.UID != cm.UID || got.Annotations["a"] != "b" {
		t.Fatalf("GET: %v %+v", err, got)
	}
	list, err := mc.Resource(cms).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) == 0 {
		t.Fatalf("LIST: %v %+v", err, list)
	}
	p, err := mc.Resource(cms).Namespace(ns).Patch(ctx, "m", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
	if err != nil || p.Labels["x"] != "y" {
		t.Fatalf("PATCH: %v %+v", err, p)
	}
}

func (e *env) rsWithPods(t *testing.T, name string, n int, block bool) (*appsv1.ReplicaSet, []*corev1.Pod) {
	t.Helper()
	labels := map[string]string{"app": name}
	rs, err := e.client.AppsV1().ReplicaSets(ns).Create(e.ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(int32(n)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pods []*corev1.Pod
	for i := range n {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name:   name + "-" + string(rune('a'+i)),
				Labels: labels,
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID,
					Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(block),
				}},
			},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}
		p, err = e.client.CoreV1().Pods(ns).Create(e.ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pods = append(pods, p)
	}
	return rs, pods
}

func (e *env) waitGone(t *testing.T, what string, get func() error) {
	t.Helper()
	err := wait.PollUntilContextTimeout(e.ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		err := get()
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("%s still exists: %v", what, err)
	}
}

func (e *env) podGetter(name string) func() error {
	return func() error { _, err := e.client.CoreV1().Pods(ns).Get(e.ctx, name, metav1.GetOptions{}); return err }
}

func (e *env) rsGetter(name string) func() error {
	return func() error {
		_, err := e.client.AppsV1().ReplicaSets(ns).Get(e.ctx, name, metav1.GetOptions{})
		return err
	}
}

func TestGarbageCollector(t *testing.T) {
	e := start(t)

	t.Run("background", func(t *testing.T) {
		rs, pods := e.rsWithPods(t, "bg", 3, true)
		if err := e.client.AppsV1().ReplicaSets(ns).Delete(e.ctx, rs.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, p := range pods {
			e.waitGone(t, "pod "+p.Name, e.podGetter(p.Name))
		}
	})

	t.Run("foreground", func(t *testing.T) {
		rs, pods := e.rsWithPods(t, "fg", 2, true)
		// A finalizer of the test's own holds one pod back: the owner must
		// wait for it.
		held := pods[0]
		held.Finalizers = []string{"test.skiff.io/hold"}
		held, err := e.client.CoreV1().Pods(ns).Update(e.ctx, held, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fg := metav1.DeletePropagationForeground
		if err := e.client.AppsV1().ReplicaSets(ns).Delete(e.ctx, rs.Name, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil {
			t.Fatal(err)
		}
		e.waitGone(t, "pod "+pods[1].Name, e.podGetter(pods[1].Name))
		// The held pod is marked for deletion, and the owner waits.
		err = wait.PollUntilContextTimeout(e.ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			p, err := e.client.CoreV1().Pods(ns).Get(ctx, held.Name, metav1.GetOptions{})
			return err == nil && p.DeletionTimestamp != nil, nil
		})
		if err != nil {
			t.Fatalf("held pod not marked for deletion: %v", err)
		}
		cur, err := e.client.AppsV1().ReplicaSets(ns).Get(e.ctx, rs.Name, metav1.GetOptions{})
		if err != nil || cur.DeletionTimestamp == nil {
			t.Fatalf("owner should still exist, deleting: %v %+v", err, cur)
		}
		held, err = e.client.CoreV1().Pods(ns).Get(e.ctx, held.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		held.Finalizers = nil
		if _, err := e.client.CoreV1().Pods(ns).Update(e.ctx, held, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitGone(t, "pod "+held.Name, e.podGetter(held.Name))
		e.waitGone(t, "replicaset "+rs.Name, e.rsGetter(rs.Name))
	})

	t.Run("orphan", func(t *testing.T) {
		rs, pods := e.rsWithPods(t, "or", 2, true)
		or := metav1.DeletePropagationOrphan
		if err := e.client.AppsV1().ReplicaSets(ns).Delete(e.ctx, rs.Name, metav1.DeleteOptions{PropagationPolicy: &or}); err != nil {
			t.Fatal(err)
		}
		e.waitGone(t, "replicaset "+rs.Name, e.rsGetter(rs.Name))
		for _, p := range pods {
			cur, err := e.client.CoreV1().Pods(ns).Get(e.ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("orphaned pod %s: %v", p.Name, err)
			}
			if len(cur.OwnerReferences) != 0 {
				t.Fatalf("orphaned pod %s keeps owner references %+v", p.Name, cur.OwnerReferences)
			}
		}
	})

	t.Run("configmap owns configmap", func(t *testing.T) {
		owner, err := e.client.CoreV1().ConfigMaps(ns).Create(e.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		other, err := e.client.CoreV1().ConfigMaps(ns).Create(e.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ref := func(cm *corev1.ConfigMap) metav1.OwnerReference {
			return metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID}
		}
		single := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "single", OwnerReferences: []metav1.OwnerReference{ref(owner)}}}
		double := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "double", OwnerReferences: []metav1.OwnerReference{ref(owner), ref(other)}}}
		for _, cm := range []*corev1.ConfigMap{single, double} {
			if _, err := e.client.CoreV1().ConfigMaps(ns).Create(e.ctx, cm, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.client.CoreV1().ConfigMaps(ns).Delete(e.ctx, owner.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitGone(t, "configmap single", func() error {
			_, err := e.client.CoreV1().ConfigMaps(ns).Get(e.ctx, "single", metav1.GetOptions{})
			return err
		})
		// "double" keeps its other owner: only the dangling reference goes.
		err = wait.PollUntilContextTimeout(e.ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			cm, err := e.client.CoreV1().ConfigMaps(ns).Get(ctx, "double", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return len(cm.OwnerReferences) == 1 && cm.OwnerReferences[0].UID == other.UID, nil
		})
		if err != nil {
			t.Fatalf("configmap double: %v", err)
		}
	})

	t.Run("dangling on creation", func(t *testing.T) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dangling", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "ConfigMap", Name: "ghost", UID: "00000000-0000-0000-0000-000000000001",
		}}}}
		if _, err := e.client.CoreV1().ConfigMaps(ns).Create(e.ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitGone(t, "configmap dangling", func() error {
			_, err := e.client.CoreV1().ConfigMaps(ns).Get(e.ctx, "dangling", metav1.GetOptions{})
			return err
		})
	})

	t.Run("cluster-scoped owner of namespaced object", func(t *testing.T) {
		owner, err := e.client.CoreV1().Namespaces().Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "owner-ns"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// A namespaced object owned by a cluster-scoped one whose owner
		// exists stays.
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "by-namespace", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "Namespace", Name: owner.Name, UID: owner.UID,
		}}}}
		if _, err := e.client.CoreV1().ConfigMaps(ns).Create(e.ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// A cluster-scoped object (a Node) owned by a namespaced one can
		// never resolve: it is collected.
		cmOwner, err := e.client.CoreV1().ConfigMaps(ns).Create(e.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ns-owner"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "owned-node", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "ConfigMap", Name: cmOwner.Name, UID: cmOwner.UID,
		}}}}
		if _, err := e.client.CoreV1().Nodes().Create(e.ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitGone(t, "node owned-node", func() error {
			_, err := e.client.CoreV1().Nodes().Get(e.ctx, "owned-node", metav1.GetOptions{})
			return err
		})
		if _, err := e.client.CoreV1().ConfigMaps(ns).Get(e.ctx, "by-namespace", metav1.GetOptions{}); err != nil {
			t.Fatalf("configmap owned by a live namespace: %v", err)
		}
	})

	for _, tc := range seenLateCases {
		t.Run(tc.name, func(t *testing.T) { e.seenLate(t, tc) })
	}
}
