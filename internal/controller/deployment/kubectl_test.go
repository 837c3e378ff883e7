package deployment_test

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-io/skiff/test/framework"
)

// standInReplicaSets plays the ReplicaSet controller until ctx ends: every
// ReplicaSet's pods exist and are available at once, except for images
// containing "broken", whose pods never become available.
func standInReplicaSets(ctx context.Context, cs kubernetes.Interface) {
	for ctx.Err() == nil {
		list, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			for i := range list.Items {
				rs := &list.Items[i]
				spec := *rs.Spec.Replicas
				avail := spec
				if c := rs.Spec.Template.Spec.Containers; len(c) > 0 && strings.Contains(c[0].Image, "broken") {
					avail = 0
				}
				want := appsv1.ReplicaSetStatus{Replicas: spec, FullyLabeledReplicas: spec, ReadyReplicas: avail, AvailableReplicas: avail, ObservedGeneration: rs.Generation}
				if !apiequality.Semantic.DeepEqual(rs.Status, want) {
					rs.Status = want
					_, _ = cs.AppsV1().ReplicaSets(ns).UpdateStatus(ctx, rs, metav1.UpdateOptions{})
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestKubectlRollout drives the controller with the stock kubectl's
// rollout commands: status, history, undo, restart, pause/resume, and a
// rollout that exceeds its progress deadline.
func TestKubectlRollout(t *testing.T) {
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH")
	}
	cs, kubeconfig := startWithKubeconfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); standInReplicaSets(ctx, cs) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	kubectl := func(args ...string) (string, error) {
		args = append([]string{"--kubeconfig", kubeconfig, "-n", ns}, args...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := kubectl(args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	image := func() string { return getDeploy(t, cs).Spec.Template.Spec.Containers[0].Image }

	must("create", "deployment", "web", "--image=web:v1", "--replicas=3")
	if out := must("rollout", "status", "deployment/web", "--timeout=30s"); !strings.Contains(out, "successfully rolled out") {
		t.Fatalf("rollout status: %s", out)
	}
	must("set", "image", "deployment/web", "web=web:v2")
	must("annotate", "deployment/web", "kubernetes.io/change-cause=to v2")
	must("rollout", "status", "deployment/web", "--timeout=30s")
	hist := must("rollout", "history", "deployment/web")
	if !strings.Contains(hist, "1 ") || !strings.Contains(hist, "2 ") || !strings.Contains(hist, "to v2") {
		t.Errorf("rollout history:\n%s", hist)
	}

	must("rollout", "undo", "deployment/web")
	must("rollout", "status", "deployment/web", "--timeout=30s")
	if img := image(); img != "web:v1" {
		t.Errorf("after undo the image is %s", img)
	}
	if rev := getDeploy(t, cs).Annotations["deployment.kubernetes.io/revision"]; rev != "3" {
		t.Errorf("revision after undo = %s, want 3", rev)
	}

	before := len(replicaSets(t, cs))
	must("rollout", "restart", "deployment/web")
	must("rollout", "status", "deployment/web", "--timeout=30s")
	if after := len(replicaSets(t, cs)); after != before+1 {
		t.Errorf("restart: %d replicasets, want %d", after, before+1)
	}

	must("rollout", "pause", "deployment/web")
	must("set", "image", "deployment/web", "web=web:v3")
	must("scale", "deployment/web", "--replicas=4")
	framework.Eventually(t, 20*time.Second, func() bool {
		d := getDeploy(t, cs)
		return d.Status.ObservedGeneration >= d.Generation && d.Status.Replicas == 4
	})
	if rsByImage(t, cs, "web:v3") != nil {
		t.Error("paused deployment rolled out")
	}
	must("rollout", "resume", "deployment/web")
	must("rollout", "status", "deployment/web", "--timeout=30s")
	if rs := rsByImage(t, cs, "web:v3"); rs == nil || *rs.Spec.Replicas != 4 {
		t.Errorf("after resume: %+v", rs)
	}

	must("patch", "deployment/web", "-p", `{"spec":{"progressDeadlineSeconds":2,"template":{"spec":{"containers":[{"name":"web","image":"web:broken"}]}}}}`)
	out, err := kubectl("rollout", "status", "deployment/web", "--timeout=30s")
	if err == nil || !strings.Contains(out, "exceeded its progress deadline") {
		t.Errorf("rollout status of a stuck rollout: err=%v\n%s", err, out)
	}
	if img := image(); img != "web:broken" {
		t.Errorf("rolled back without the annotation: %s", img)
	}
}

func replicaSets(t *testing.T, cs kubernetes.Interface) []appsv1.ReplicaSet {
	t.Helper()
	list, err := cs.AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}
