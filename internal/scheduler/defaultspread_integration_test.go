package scheduler_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/scheduler"
	"github.com/skiff-io/skiff/test/framework"
)

// TestDefaultSpreadAgainstServer: ten pods of one ReplicaSet, without
// requests, on three equal nodes tie on every resource score; the system
// default topology spread (over the ReplicaSet's selector) must put them
// on all three nodes, at most four on one. No controllers run: the test
// creates the ReplicaSet and its pods itself.
func TestDefaultSpreadAgainstServer(t *testing.T) {
	cluster := framework.StartInProcess(t, framework.WithControllers())
	cfg, err := clientcmd.BuildConfigFromFlags("", cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = -1, 0
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Nodes so large that the resource scores of pods without requests tie
	// after integer rounding: only the default spread tells them apart.
	for i := range 3 {
		name := fmt.Sprintf("node-%d", i)
		createNode(t, ctx, client, name, "256", map[string]string{v1.LabelHostname: name}, withMemory("1Ti"))
	}
	labels := map[string]string{"app": "web", "pod-template-hash": "abc"}
	rs, err := client.AppsV1().ReplicaSets("default").Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-abc"},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create replicaset: %v", err)
	}

	factory := informers.NewSharedInformerFactory(client, 0)
	s, err := scheduler.New(client, factory, record.NewFakeRecorder(100), scheduler.Config{})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Start: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Start did not return after cancel")
		}
	}()

	yes := true
	const replicas = 10
	for i := range replicas {
		createPod(t, ctx, client, fmt.Sprintf("web-abc-%d", i), "0", func(p *v1.Pod) {
			p.Labels = labels
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes, BlockOwnerDeletion: &yes}}
			p.Spec.Containers[0].Resources = v1.ResourceRequirements{} // no requests
		})
	}
	perNode := map[string]int{}
	framework.Eventually(t, 30*time.Second, func() bool {
		clear(perNode)
		for i := range replicas {
			p := getPod(ctx, client, fmt.Sprintf("web-abc-%d", i))
			if p == nil || p.Spec.NodeName == "" {
				return false
			}
			perNode[p.Spec.NodeName]++
		}
		return true
	})
	// Each decision goes to a node with the fewest of these pods, so the
	// result is 4, 3, 3 in some order; random tie-breaking alone passes
	// this about one time in five.
	for i := range 3 {
		if n := perNode[fmt.Sprintf("node-%d", i)]; n < 3 || n > 4 {
			t.Fatalf("pods per node %v, want every node used, 3 or 4 on each", perNode)
		}
	}
}
