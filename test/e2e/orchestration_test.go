package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-io/skiff/test/framework"
)

// The orchestrator end to end: `skiff server --disable-agent` (scheduler
// and controllers) plus simulated nodes in two `skiff sim` processes,
// driven by the stock kubectl.
func TestOrchestration(t *testing.T) {
	c := framework.StartBinary(t, skiffBin, "--node-monitor-grace-period=4s")
	k := kubectl{t: t, c: c}
	simArgs := []string{"--heartbeat-interval=1s", "--run-time=1s", "--start-delay=100ms"}
	framework.StartSim(t, skiffBin, c, "a", append(simArgs, "--nodes=2", "--name-prefix=sim-a-")...)
	simB := framework.StartSim(t, skiffBin, c, "b", append(simArgs, "--nodes=1", "--name-prefix=sim-b-")...)
	waitFor(t, k, 30*time.Second, "3 Ready nodes", func() bool {
		out, _ := k.run("", "get", "nodes", "--no-headers")
		return strings.Count(out, " Ready ") == 3
	})
	k.ok("create", "namespace", "orch")

	t.Run("deployment spreads over the nodes", func(t *testing.T) {
		k.okIn(deployment("web", "skiff.io/test/server:v1", 10, ""), "apply", "-f", "-")
		k.ok("rollout", "status", "deployment/web", "-n", "orch", "--timeout=60s")
		nodes := podNodes(t, k, "app=web")
		if len(nodes) != 3 {
			t.Fatalf("10 replicas on %d nodes, want all 3: %v", len(nodes), nodes)
		}
	})

	t.Run("deleted pod is replaced", func(t *testing.T) {
		victim := strings.Fields(k.ok("get", "pods", "-n", "orch", "-l", "app=web", "-o", "name"))[0]
		k.ok("delete", "-n", "orch", victim, "--wait=false")
		waitFor(t, k, 30*time.Second, "10 ready pods without "+victim, func() bool {
			out, _ := k.run("", "get", "pods", "-n", "orch", "-l", "app=web", "-o", "name")
			return !strings.Contains(out, victim+"\n") && readyPods(k, "app=web") == 10
		})
	})

	t.Run("rolling update keeps 10 ready", func(t *testing.T) {
		var minReady atomic.Int64
		minReady.Store(1 << 30)
		stop := watchReady(t, c.Client, "orch", "app=web", &minReady)
		k.ok("set", "image", "deployment/web", "-n", "orch", "web=skiff.io/test/server:v2")
		k.ok("rollout", "status", "deployment/web", "-n", "orch", "--timeout=90s")
		stop()
		if m := minReady.Load(); m < 10 {
			t.Fatalf("a watcher saw %d ready pods during the rollout, want never fewer than 10", m)
		}
		out := k.ok("rollout", "history", "deployment/web", "-n", "orch")
		mustContain(t, "rollout history", out, "REVISION", "1 ", "2 ")
	})

	t.Run("rollout undo returns to the previous image", func(t *testing.T) {
		k.ok("rollout", "undo", "deployment/web", "-n", "orch")
		k.ok("rollout", "status", "deployment/web", "-n", "orch", "--timeout=90s")
		out := k.ok("get", "deployment/web", "-n", "orch", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
		if out != "skiff.io/test/server:v1" {
			t.Fatalf("image after undo: %q", out)
		}
		waitFor(t, k, 30*time.Second, "only v1 pods", func() bool {
			out, _ := k.run("", "get", "pods", "-n", "orch", "-l", "app=web", "-o", "jsonpath={.items[*].spec.containers[0].image}")
			return strings.Count(out, "server:v1") == 10 && !strings.Contains(out, "server:v2")
		})
	})

	t.Run("pause, resume and restart", func(t *testing.T) {
		k.ok("rollout", "pause", "deployment/web", "-n", "orch")
		k.ok("set", "env", "deployment/web", "-n", "orch", "COLOR=blue")
		time.Sleep(500 * time.Millisecond) // a paused rollout must not start: give it the chance
		if n := len(strings.Fields(k.ok("get", "rs", "-n", "orch", "-l", "app=web", "-o", "name"))); n != 2 {
			t.Fatalf("paused deployment has %d replica sets, want 2", n)
		}
		k.ok("rollout", "resume", "deployment/web", "-n", "orch")
		k.ok("rollout", "status", "deployment/web", "-n", "orch", "--timeout=90s")
		k.ok("rollout", "restart", "deployment/web", "-n", "orch")
		k.ok("rollout", "status", "deployment/web", "-n", "orch", "--timeout=90s")
		out := k.ok("get", "deployment/web", "-n", "orch", "-o", "jsonpath={.spec.template.metadata.annotations}")
		mustContain(t, "restart", out, "kubectl.kubernetes.io/restartedAt")
	})

	t.Run("failing rollout rolls itself back", func(t *testing.T) {
		k.okIn(deployment("auto", "skiff.io/test/server:v1", 3, `  annotations: {skiff.io/auto-rollback: "true"}
`), "apply", "-f", "-")
		k.ok("rollout", "status", "deployment/auto", "-n", "orch", "--timeout=60s")
		k.ok("set", "image", "deployment/auto", "-n", "orch", "web=skiff.io/test/fail:v1")
		waitFor(t, k, 60*time.Second, "automatic rollback to server:v1", func() bool {
			out, _ := k.run("", "get", "deployment/auto", "-n", "orch", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
			return out == "skiff.io/test/server:v1"
		})
		k.ok("rollout", "status", "deployment/auto", "-n", "orch", "--timeout=60s")
		out := k.ok("get", "events", "-n", "orch", "--field-selector", "reason=AutoRollback")
		mustContain(t, "auto-rollback event", out, "AutoRollback")
	})

	t.Run("unschedulable pod says why", func(t *testing.T) {
		k.ok("run", "huge", "-n", "orch", "--image=skiff.io/test/server:v1", "--overrides",
			`{"spec":{"containers":[{"name":"huge","image":"skiff.io/test/server:v1","resources":{"requests":{"cpu":"1000"}}}]}}`)
		waitFor(t, k, 30*time.Second, "a FailedScheduling event", func() bool {
			out, _ := k.run("", "get", "events", "-n", "orch", "--field-selector", "involvedObject.name=huge,reason=FailedScheduling")
			return strings.Contains(out, "0/3 nodes are available: 3 Insufficient cpu.")
		})
		out := k.ok("get", "pod", "huge", "-n", "orch", "-o", `jsonpath={.status.conditions[?(@.type=="PodScheduled")].reason}`)
		if out != "Unschedulable" {
			t.Fatalf("PodScheduled reason %q, want Unschedulable", out)
		}
		k.ok("delete", "pod", "huge", "-n", "orch", "--wait=false")
	})

	t.Run("job runs to completion", func(t *testing.T) {
		k.ok("create", "job", "once", "-n", "orch", "--image=busybox", "--", "true")
		k.ok("wait", "--for=condition=complete", "job/once", "-n", "orch", "--timeout=60s")
		out := k.ok("get", "job", "once", "-n", "orch", "-o", "jsonpath={.status.succeeded}")
		if out != "1" {
			t.Fatalf("job succeeded %q, want 1", out)
		}
	})

	t.Run("deleting a deployment removes its replica sets and pods", func(t *testing.T) {
		k.ok("delete", "deployment", "web", "-n", "orch")
		waitFor(t, k, 60*time.Second, "web's replica sets and pods gone", func() bool {
			rs, _ := k.run("", "get", "rs", "-n", "orch", "-l", "app=web", "-o", "name")
			pods, _ := k.run("", "get", "pods", "-n", "orch", "-l", "app=web", "-o", "name")
			return strings.TrimSpace(rs) == "" && strings.TrimSpace(pods) == ""
		})
	})

	t.Run("dead node's pods come back elsewhere", func(t *testing.T) {
		k.okIn(deployment("hardy", "skiff.io/test/server:v1", 6, "", `      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
`), "apply", "-f", "-")
		k.ok("rollout", "status", "deployment/hardy", "-n", "orch", "--timeout=60s")
		if nodes := podNodes(t, k, "app=hardy"); !nodes["sim-b-0"] {
			t.Fatalf("no hardy pod on sim-b-0 to lose: %v", nodes)
		}
		simB.Kill9()
		waitFor(t, k, 60*time.Second, "sim-b-0 tainted unreachable", func() bool {
			out, _ := k.run("", "get", "node", "sim-b-0", "-o", "jsonpath={.spec.taints[*].key}")
			return strings.Contains(out, "node.kubernetes.io/unreachable")
		})
		// The evicted pods stay Terminating on the dead node (no kubelet
		// confirms they stopped), as upstream; their replacements run
		// elsewhere.
		waitFor(t, k, 60*time.Second, "6 ready hardy pods off sim-b-0", func() bool {
			pods, err := c.Client.CoreV1().Pods("orch").List(context.Background(), metav1.ListOptions{LabelSelector: "app=hardy"})
			if err != nil {
				return false
			}
			ready := 0
			for _, p := range pods.Items {
				if p.DeletionTimestamp != nil {
					continue
				}
				if p.Spec.NodeName == "sim-b-0" {
					return false
				}
				for _, cond := range p.Status.Conditions {
					if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
						ready++
					}
				}
			}
			return ready == 6
		})
	})
}

// deployment renders a Deployment in namespace orch with maxUnavailable 0,
// a short progress deadline, and extra metadata / pod spec lines.
func deployment(name, image string, replicas int, metaExtra string, specExtra ...string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: orch
%[4]sspec:
  replicas: %[3]d
  progressDeadlineSeconds: 6
  strategy:
    rollingUpdate: {maxUnavailable: 0, maxSurge: 2}
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
%[5]s      containers:
      - name: web
        image: %[2]s
`, name, image, replicas, metaExtra, strings.Join(specExtra, ""))
}

// podNodes returns the nodes that pods matching selector run on.
func podNodes(t *testing.T, k kubectl, selector string) map[string]bool {
	t.Helper()
	out := k.ok("get", "pods", "-n", "orch", "-l", selector, "-o", "jsonpath={.items[*].spec.nodeName}")
	nodes := map[string]bool{}
	for _, n := range strings.Fields(out) {
		nodes[n] = true
	}
	return nodes
}

// readyPods counts pods matching selector that are Ready and not being
// deleted.
func readyPods(k kubectl, selector string) int {
	return readyPodsIn(k, "orch", selector)
}

func waitFor(t *testing.T, k kubectl, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s\nserver log:\n%s", timeout, what, tail(k.c.ServerLog(), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// watchReady watches pods matching selector and records the fewest Ready,
// not terminating pods seen after the initial state; stop ends the watch.
func watchReady(t *testing.T, cs kubernetes.Interface, ns, selector string, minReady *atomic.Int64) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	ready := map[string]bool{}
	count := func() int64 {
		n := int64(0)
		for _, r := range ready {
			if r {
				n++
			}
		}
		return n
	}
	isReady := func(p *corev1.Pod) bool {
		if p.DeletionTimestamp != nil {
			return false
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				return c.Status == corev1.ConditionTrue
			}
		}
		return false
	}
	for i := range list.Items {
		ready[list.Items[i].Name] = isReady(&list.Items[i])
	}
	minReady.Store(count())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			if ev.Type == watch.Deleted {
				delete(ready, p.Name)
			} else {
				ready[p.Name] = isReady(p)
			}
			if n := count(); n < minReady.Load() {
				minReady.Store(n)
			}
		}
	}()
	return func() { w.Stop(); cancel(); <-done }
}
