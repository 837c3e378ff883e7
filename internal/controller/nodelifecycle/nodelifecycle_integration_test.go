package nodelifecycle_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/skiff-io/skiff/internal/controller/nodelifecycle"
	"github.com/skiff-io/skiff/test/framework"
)

const nodeName = "n1"

// kubelet stands in for a node agent: it renews the node's Lease while
// running.
type kubelet struct {
	client kubernetes.Interface
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

func (k *kubelet) start(ctx context.Context, t *testing.T) {
	t.Helper()
	// Post Ready=True, as a kubelet does when it (re)starts.
	err := retryUpdate(ctx, func() error {
		n, err := k.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}}
		_, err = k.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	kctx, cancel := context.WithCancel(ctx)
	k.stop = cancel
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		for {
			l, err := k.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(kctx, nodeName, metav1.GetOptions{})
			if err == nil {
				l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
				_, _ = k.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Update(kctx, l, metav1.UpdateOptions{})
			}
			select {
			case <-kctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
}

func (k *kubelet) halt() {
	if k.stop != nil {
		k.stop()
		k.wg.Wait()
		k.stop = nil
	}
}

func retryUpdate(ctx context.Context, f func() error) error {
	return wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		err := f()
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
}

func TestNodeLifecycle(t *testing.T) {
	cluster := framework.StartInProcess(t, framework.WithControllers())
	client := cluster.NewClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: corev1.NamespaceNodeLease}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	now := metav1.NewMicroTime(time.Now())
	if _, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(nodeName), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &now},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	k := &kubelet{client: client}
	k.start(ctx, t)
	defer k.halt()

	recorder := record.NewFakeRecorder(1000)
	stop := framework.RunController(t, client, recorder, func(client kubernetes.Interface, factory informers.SharedInformerFactory, rec record.EventRecorder) (*nodelifecycle.Controller, error) {
		return nodelifecycle.New(client, factory, rec, nodelifecycle.Options{GracePeriod: 2 * time.Second})
	})
	defer stop() // stopped before the kubelet halts

	tol := func(secs *int64) []corev1.Toleration {
		return []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs}}
	}
	mkPod := func(name, node string, tols []corev1.Toleration) {
		t.Helper()
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{
				NodeName: node, Tolerations: tols, TerminationGracePeriodSeconds: ptr.To[int64](0),
				Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
			},
		}
		p, err := client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if node != nodeName {
			return // an orphan: the controller may delete it at once
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		if _, err := client.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// "defaulted" gets DefaultTolerationSeconds' 300 s tolerations from
	// the API server; "zero" tolerates unreachable for 0 s: evicted at once.
	mkPod("defaulted", nodeName, nil)
	mkPod("zero", nodeName, tol(ptr.To[int64](0)))
	mkPod("tolerant", nodeName, tol(ptr.To[int64](1)))
	mkPod("forever", nodeName, tol(nil))

	getNode := func() *corev1.Node {
		n, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	poll := func(what string, timeout time.Duration, cond func() bool) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, timeout, true, func(context.Context) (bool, error) { return cond(), nil })
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	podGone := func(name string) func() bool {
		return func() bool {
			_, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}
	}

	// A node whose kubelet renews its Lease stays Ready and untainted for
	// well past the grace period.
	time.Sleep(3 * time.Second) // observing that nothing happens needs time to pass
	if n := getNode(); len(n.Spec.Taints) != 0 || readyStatus(n) != corev1.ConditionTrue {
		t.Fatalf("healthy node changed: ready=%s taints=%v", readyStatus(n), n.Spec.Taints)
	}
	for _, p := range []string{"defaulted", "zero", "tolerant", "forever"} {
		if podGone(p)() {
			t.Fatalf("pod %s deleted on a healthy node", p)
		}
	}

	// The kubelet goes silent.
	k.halt()
	poll("node Unknown and tainted unreachable", 10*time.Second, func() bool {
		n := getNode()
		return readyStatus(n) == corev1.ConditionUnknown &&
			hasTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute) &&
			hasTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule)
	})
	n := getNode()
	for _, cnd := range n.Status.Conditions {
		if cnd.Type == corev1.NodeReady && (cnd.Reason != "NodeStatusUnknown" || cnd.Message != "Kubelet stopped posting node status.") {
			t.Fatalf("Ready condition %+v", cnd)
		}
	}
	var added time.Time
	for _, tt := range n.Spec.Taints {
		if tt.Key == corev1.TaintNodeUnreachable && tt.Effect == corev1.TaintEffectNoExecute && tt.TimeAdded != nil {
			added = tt.TimeAdded.Time
		}
	}
	if added.IsZero() {
		t.Fatalf("NoExecute taint without timeAdded: %+v", n.Spec.Taints)
	}
	poll("pod tolerating 0s evicted", 5*time.Second, podGone("zero"))
	poll("pod tolerating 1s evicted", 10*time.Second, podGone("tolerant"))
	if since := time.Since(added); since < time.Second {
		t.Fatalf("tolerant pod evicted %v after the taint, before its 1s", since)
	}
	poll("pod tolerating forever marked not ready", 5*time.Second, func() bool {
		p, err := client.CoreV1().Pods("default").Get(ctx, "forever", metav1.GetOptions{})
		return err == nil && podReady(p) == corev1.ConditionFalse
	})
	for _, p := range []string{"forever", "defaulted"} {
		if podGone(p)() {
			t.Fatalf("pod %s, tolerating the taint for good or 300 s, was evicted", p)
		}
	}
	evicted := 0
	for len(recorder.Events) > 0 {
		if ev := <-recorder.Events; strings.Contains(ev, "TaintManagerEviction") && strings.Contains(ev, "Marking for deletion Pod default/") {
			evicted++
		}
	}
	if evicted != 2 {
		t.Fatalf("%d TaintManagerEviction events, want 2", evicted)
	}

	// The kubelet comes back: the taints go.
	k.start(ctx, t)
	poll("taints removed", 10*time.Second, func() bool {
		n := getNode()
		return readyStatus(n) == corev1.ConditionTrue && len(n.Spec.Taints) == 0
	})

	// A NoExecute taint of the user's: the controller keeps it, and pods
	// that do not tolerate it go at once.
	err = retryUpdate(ctx, func() error {
		n := getNode()
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "example.com/evict", Value: "x", Effect: corev1.TaintEffectNoExecute})
		_, err := client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	poll("pods not tolerating a user taint evicted", 5*time.Second, func() bool { return podGone("defaulted")() && podGone("forever")() })
	if !hasTaint(getNode(), "example.com/evict", corev1.TaintEffectNoExecute) {
		t.Fatal("the user's taint was removed")
	}

	// A pod bound to a node that does not exist is deleted.
	mkPod("orphan", "ghost", nil)
	poll("orphaned pod deleted", 10*time.Second, podGone("orphan"))
}

func readyStatus(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

func podReady(p *corev1.Pod) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status
		}
	}
	return ""
}

func hasTaint(n *corev1.Node, key string, effect corev1.TaintEffect) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key && t.Effect == effect {
			return true
		}
	}
	return false
}
