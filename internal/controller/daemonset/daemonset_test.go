package daemonset_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-io/skiff/internal/controller/daemonset"
	"github.com/skiff-io/skiff/test/framework"
)

func startController(t *testing.T) kubernetes.Interface {
	t.Helper()
	_, client, _ := framework.StartController(t, framework.Builder(daemonset.New))
	return client
}

func createNode(ctx context.Context, t *testing.T, client kubernetes.Interface, name string, taints ...corev1.Taint) {
	t.Helper()
	if _, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Taints: taints}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// podsByNode returns the DaemonSet's live pods keyed by the node their
// affinity pins them to; it fails on a pod without that affinity.
func podsByNode(ctx context.Context, t *testing.T, client kubernetes.Interface) map[string][]corev1.Pod {
	t.Helper()
	list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]corev1.Pod{}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		a := p.Spec.Affinity
		if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil ||
			len(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms) != 1 ||
			len(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields) != 1 {
			t.Fatalf("pod %s has no node name affinity: %+v", p.Name, a)
		}
		f := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields[0]
		if f.Key != "metadata.name" || f.Operator != corev1.NodeSelectorOpIn || len(f.Values) != 1 || p.Spec.NodeName != "" {
			t.Fatalf("pod %s: affinity field %+v nodeName %q", p.Name, f, p.Spec.NodeName)
		}
		out[f.Values[0]] = append(out[f.Values[0]], p)
	}
	return out
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// makeReady marks every live pod of the DaemonSet Running and Ready, as a
// kubelet would.
func makeReady(ctx context.Context, t *testing.T, client kubernetes.Interface) {
	t.Helper()
	for _, pods := range podsByNode(ctx, t, client) {
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning {
				continue
			}
			if _, err := framework.SetRunningReady(ctx, client, &p); err != nil {
				t.Logf("pod %s status: %v", p.Name, err) // it may be gone already
			}
		}
	}
}

// rolledOut is kubectl rollout status's test for a DaemonSet.
func rolledOut(ds *appsv1.DaemonSet) bool {
	s := ds.Status
	return ds.Generation <= s.ObservedGeneration && s.UpdatedNumberScheduled >= s.DesiredNumberScheduled && s.NumberAvailable >= s.DesiredNumberScheduled
}

func TestDaemonSetPodPerNode(t *testing.T) {
	client := startController(t)
	ctx := context.Background()
	for _, n := range []string{"n1", "n2", "n3"} {
		createNode(ctx, t, client, n)
	}
	createNode(ctx, t, client, "tainted", corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule})
	ds, err := client.AppsV1().DaemonSets("default").Create(ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "default"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "agent:1"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	wantNodes := func(nodes ...string) func(context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			got := podsByNode(ctx, t, client)
			if len(got) != len(nodes) {
				return false, nil
			}
			for _, n := range nodes {
				if len(got[n]) != 1 {
					return false, nil
				}
			}
			return true, nil
		}
	}
	waitFor(ctx, t, "a pod on each untainted node", wantNodes("n1", "n2", "n3"))
	for _, pods := range podsByNode(ctx, t, client) {
		p := pods[0]
		if p.Labels["controller-revision-hash"] == "" || p.Labels["pod-template-generation"] != "1" {
			t.Errorf("pod %s labels = %v", p.Name, p.Labels)
		}
		var tolerates bool
		for _, tol := range p.Spec.Tolerations {
			tolerates = tolerates || tol.Key == corev1.TaintNodeUnschedulable
		}
		if !tolerates {
			t.Errorf("pod %s lacks the daemon tolerations: %v", p.Name, p.Spec.Tolerations)
		}
	}
	revs, err := client.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(revs.Items) != 1 || revs.Items[0].Revision != 1 {
		t.Fatalf("controller revisions: %v %+v", err, revs)
	}

	createNode(ctx, t, client, "n4")
	waitFor(ctx, t, "a pod on the new node", wantNodes("n1", "n2", "n3", "n4"))

	makeReady(ctx, t, client)
	waitFor(ctx, t, "status to report 4 available", func(ctx context.Context) (bool, error) {
		ds, err = client.AppsV1().DaemonSets("default").Get(ctx, "agent", metav1.GetOptions{})
		s := ds.Status
		return err == nil && s.DesiredNumberScheduled == 4 && s.CurrentNumberScheduled == 4 && s.NumberReady == 4 &&
			s.NumberAvailable == 4 && s.UpdatedNumberScheduled == 4 && s.NumberUnavailable == 0 && rolledOut(ds), err
	})

	// A new template rolls out one node at a time (maxUnavailable 1).
	ds.Spec.Template.Spec.Containers[0].Image = "agent:2"
	if ds, err = client.AppsV1().DaemonSets("default").Update(ctx, ds, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the rollout", func(ctx context.Context) (bool, error) {
		got := podsByNode(ctx, t, client)
		notReady := 0
		for _, pods := range got {
			for _, p := range pods {
				if p.Status.Phase != corev1.PodRunning {
					notReady++
				}
			}
		}
		if notReady > 1 {
			return false, fmt.Errorf("%d nodes unavailable at once", notReady)
		}
		makeReady(ctx, t, client)
		d, err := client.AppsV1().DaemonSets("default").Get(ctx, "agent", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ds = d
		return rolledOut(ds) && ds.Status.UpdatedNumberScheduled == 4, nil
	})
	for n, pods := range podsByNode(ctx, t, client) {
		if len(pods) != 1 || pods[0].Spec.Containers[0].Image != "agent:2" || pods[0].Labels["pod-template-generation"] != "2" {
			t.Errorf("node %s after rollout: %d pods, first %s", n, len(pods), pods[0].Spec.Containers[0].Image)
		}
	}
	revs, err = client.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(revs.Items) != 2 {
		t.Fatalf("controller revisions after update: %v, %d", err, len(revs.Items))
	}
}
