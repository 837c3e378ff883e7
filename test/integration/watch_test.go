package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-io/skiff/internal/etcd/etcdtest"
	"github.com/skiff-io/skiff/test/framework"
)

func TestPagination(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "page")
	const n = 500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			_, err := cs.CoreV1().ConfigMaps("page").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%04d", i)}}, metav1.CreateOptions{})
			if err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("create: %v", err)
	}
	seen := map[string]bool{}
	cont := ""
	pages := 0
	var rv string
	for {
		l, err := cs.CoreV1().ConfigMaps("page").List(ctx, metav1.ListOptions{Limit: 70, Continue: cont})
		if err != nil {
			t.Fatalf("list page %d: %v", pages, err)
		}
		if rv == "" {
			rv = l.ResourceVersion
			if l.RemainingItemCount == nil || *l.RemainingItemCount != n-70 {
				t.Errorf("remainingItemCount = %v, want %d", l.RemainingItemCount, n-70)
			}
		} else if l.ResourceVersion != rv {
			t.Errorf("page %d at resourceVersion %s, first page at %s", pages, l.ResourceVersion, rv)
		}
		pages++
		for _, it := range l.Items {
			if seen[it.Name] {
				t.Fatalf("%s listed twice", it.Name)
			}
			seen[it.Name] = true
		}
		// A write between pages must not show up in this list.
		if pages == 1 {
			if _, err := cs.CoreV1().ConfigMaps("page").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-9999"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if l.Continue == "" {
			break
		}
		cont = l.Continue
	}
	if len(seen) != n || pages != (n+69)/70 {
		t.Fatalf("saw %d objects in %d pages, want %d in %d", len(seen), pages, n, (n+69)/70)
	}
	if _, err := cs.CoreV1().ConfigMaps("page").List(ctx, metav1.ListOptions{Limit: 10, Continue: "garbage"}); !apierrors.IsBadRequest(err) {
		t.Fatalf("bad continue token: want BadRequest, got %v", err)
	}
}

func TestWatchFromResourceVersion(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "w")
	cm, err := cs.CoreV1().ConfigMaps("w").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"k": "v"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().ConfigMaps("w").Watch(ctx, metav1.ListOptions{ResourceVersion: cm.ResourceVersion, LabelSelector: "k=v"})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()
	cm.Data = map[string]string{"x": "1"}
	if _, err := cs.CoreV1().ConfigMaps("w").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps("w").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "unlabelled"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().ConfigMaps("w").Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []watch.EventType{watch.Modified, watch.Deleted}
	for i, typ := range want {
		select {
		case ev := <-w.ResultChan():
			if ev.Type != typ {
				t.Fatalf("event %d: type %s, want %s (%v)", i, ev.Type, typ, ev.Object)
			}
			if got := ev.Object.(*corev1.ConfigMap).Name; got != "a" {
				t.Fatalf("event %d for %s: the selector should have filtered it", i, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event %d", i)
		}
	}
}

// An informer keeps working across a server restart: it relists and sees
// changes made after the restart.
func TestInformerAcrossRestart(t *testing.T) {
	c := framework.StartInProcess(t, framework.WithControllers())
	ctx := ctxT(t)
	mustNamespace(t, c.Client, "inf")
	// The informer's client outlives the first server process.
	cs := kubernetes.NewForConfigOrDie(c.Config)
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace("inf"))
	inf := factory.Core().V1().ConfigMaps().Informer()
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	has := func(name string) wait.ConditionWithContextFunc {
		return func(context.Context) (bool, error) {
			_, ok, _ := inf.GetStore().GetByKey("inf/" + name)
			return ok, nil
		}
	}
	if _, err := cs.CoreV1().ConfigMaps("inf").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, has("before")); err != nil {
		t.Fatal("informer missed 'before'")
	}
	c.Restart(t)
	if _, err := c.Client.CoreV1().ConfigMaps("inf").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, has("after")); err != nil {
		t.Fatal("informer did not see 'after' the restart")
	}
	if _, err := c.Client.CoreV1().ConfigMaps("inf").Get(ctx, "before", metav1.GetOptions{}); err != nil {
		t.Fatalf("object lost across restart: %v", err)
	}
}

// The server runs on an external 3-member etcd cluster and keeps serving
// writes when one member stops.
func TestExternalEtcdCluster(t *testing.T) {
	endpoints, stopMember := etcdtest.StartTestCluster(t, 3)
	c := framework.StartInProcess(t, framework.WithEtcd(endpoints), framework.WithControllers())
	ctx := ctxT(t)
	cs := c.Client
	mustNamespace(t, cs, "ext")
	if _, err := cs.CoreV1().ConfigMaps("ext").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "one"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	stopMember(0)
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ConfigMaps("ext").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "two"}}, metav1.CreateOptions{})
		return err == nil || apierrors.IsAlreadyExists(err), nil
	})
	if err != nil {
		t.Fatalf("write after a member stopped: %v", err)
	}
	for i := 0; i < 10; i++ {
		if _, err := cs.CoreV1().ConfigMaps("ext").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("more-%d", i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("write %d with 2 of 3 members: %v", i, err)
		}
	}
	l, err := cs.CoreV1().ConfigMaps("ext").List(ctx, metav1.ListOptions{})
	if err != nil || len(l.Items) != 12 {
		t.Fatalf("list: %v, %d items", err, len(l.Items))
	}
}
