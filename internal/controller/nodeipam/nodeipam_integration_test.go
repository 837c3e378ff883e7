package nodeipam_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/controller/nodeipam"
	"github.com/skiff-io/skiff/test/framework"
)

func TestNodeIPAM(t *testing.T) {
	cluster := framework.StartInProcess(t, framework.WithControllers())
	client := cluster.NewClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A node that already holds a range before the controller starts:
	// the controller must not hand that range out again.
	mkNode(ctx, t, client, "pre", "10.42.0.0/24")

	recorder := record.NewFakeRecorder(100)
	start := func() func() {
		return framework.RunController(t, client, recorder, func(client kubernetes.Interface, factory informers.SharedInformerFactory, rec record.EventRecorder) (*nodeipam.Controller, error) {
			return nodeipam.New(client, factory, rec, nodeipam.Options{ClusterCIDR: "10.42.0.0/22"})
		})
	}
	stop := start()
	defer func() { stop() }()

	got := map[string]string{}
	for _, n := range []string{"a", "b", "c"} {
		mkNode(ctx, t, client, n, "")
	}
	for _, n := range []string{"a", "b", "c"} {
		got[n] = waitCIDR(ctx, t, client, n)
	}
	seen := map[string]string{"10.42.0.0/24": "pre"}
	for n, c := range got {
		if other, dup := seen[c]; dup {
			t.Fatalf("nodes %s and %s both got %s", n, other, c)
		}
		seen[c] = n
	}

	// Restart the controller: it must rebuild the ranges in use from the
	// nodes. Node "b" is deleted while it is down; its range is free.
	stop()
	if err := client.CoreV1().Nodes().Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	stop = start()
	mkNode(ctx, t, client, "d", "")
	if c := waitCIDR(ctx, t, client, "d"); c != got["b"] {
		t.Fatalf("node d got %s, want b's freed range %s", c, got["b"])
	}

	// The /22 holds four /24s, all taken now.
	mkNode(ctx, t, client, "e", "")
	select {
	case ev := <-recorder.Events:
		if !strings.Contains(ev, "CIDRNotAvailable") {
			t.Fatalf("event %q, want CIDRNotAvailable", ev)
		}
	case <-ctx.Done():
		t.Fatal("no CIDRNotAvailable event")
	}
	n, err := client.CoreV1().Nodes().Get(ctx, "e", metav1.GetOptions{})
	if err != nil || n.Spec.PodCIDR != "" {
		t.Fatalf("node e: %v podCIDR=%q, want none", err, n.Spec.PodCIDR)
	}
	// Deleting a node frees its range for e (the retry picks it up).
	if err := client.CoreV1().Nodes().Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if c := waitCIDR(ctx, t, client, "e"); c != got["a"] {
		t.Fatalf("node e got %s, want a's freed range %s", c, got["a"])
	}
}

func mkNode(ctx context.Context, t *testing.T, client kubernetes.Interface, name, cidr string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if cidr != "" {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
	}
	if _, err := client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func waitCIDR(ctx context.Context, t *testing.T, client kubernetes.Interface, name string) string {
	t.Helper()
	var cidr string
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		if n.Spec.PodCIDR != "" && (len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != n.Spec.PodCIDR) {
			return false, nil
		}
		cidr = n.Spec.PodCIDR
		return cidr != "", nil
	})
	if err != nil {
		t.Fatalf("node %s got no podCIDR: %v", name, err)
	}
	return cidr
}
