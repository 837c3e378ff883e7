package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/skiff-io/skiff/test/framework"
)

// TestPodResize resizes a running pod in place on a real node with the
// stock `kubectl patch --subresource resize`, as upstream's conformance
// tests "Pod InPlace Resize Container" do through the API: the cpu
// request and limit and the memory limit of the running container change
// (its cgroup cpu.shares, CFS quota and memory limit follow, read from
// inside it) without a restart; the status reports the new resources and
// allocatedResources, observedGeneration catches up and no resize
// condition stays; a memory change under resizePolicy RestartContainer
// restarts the container (restartCount 1) with the new limit; a memory
// limit is lowered in place; a resize beyond the node's cpu is Deferred;
// an invalid one is refused with upstream's message.
func TestPodResize(t *testing.T) {
	if why := framework.CanRunContainers(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	images := t.TempDir()
	framework.BuildImages(t, images)
	network := framework.NewNetwork(t, "skrsz0", "10.199.91.0/24")
	c := framework.StartNodeIn(t, skiffBin, images, network.AddNode(t, "skrsz-node"))
	k := kubectl{t: t, c: c}
	waitFor, jsonpath := k.waitFor, k.jsonpath

	k.okIn(`apiVersion: v1
kind: Pod
metadata:
  name: rsz
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 0
  containers:
  - name: c1
    image: docker.io/library/busybox:1.36
    command: ["sh", "-c", "sleep 1d"]
    resources:
      requests: {cpu: 20m, memory: 35Mi}
      limits: {cpu: 30m, memory: 45Mi}
  - name: c2
    image: docker.io/library/busybox:1.36
    command: ["sh", "-c", "sleep 1d"]
    resizePolicy:
    - {resourceName: memory, restartPolicy: RestartContainer}
    resources:
      requests: {cpu: 20m, memory: 35Mi}
      limits: {memory: 45Mi}
`, "apply", "-f", "-")
	waitFor(t, "rsz Running and Ready", 90*time.Second, func() (bool, string) {
		s := jsonpath("pod/rsz", `{.status.phase} {.status.conditions[?(@.type=="Ready")].status}`)
		return s == "Running True", s
	})
	cgroup := func(container, file string) string {
		return strings.TrimSpace(k.ok("exec", "rsz", "-c", container, "--", "head", "-n", "1", file))
	}
	// cgroup v1 (this machine's hybrid layout) or v2.
	v2 := strings.Contains(k.ok("exec", "rsz", "-c", "c1", "--", "sh", "-c", "mount -t cgroup2"), "/sys/fs/cgroup ")
	t.Logf("cgroup v2 inside the container: %v", v2)
	cpuLimit, cpuShares, memLimit := "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.shares", "/sys/fs/cgroup/memory/memory.limit_in_bytes"
	if v2 {
		cpuLimit, cpuShares, memLimit = "/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu.weight", "/sys/fs/cgroup/memory.max"
	}
	check := func(t *testing.T, container, file, want string) {
		t.Helper()
		waitFor(t, container+" "+file, 30*time.Second, func() (bool, string) {
			got := cgroup(container, file)
			return got == want, got
		})
		t.Logf("%s %s = %s", container, file, want)
	}
	if !v2 {
		check(t, "c1", cpuLimit, "3000")
		check(t, "c1", cpuShares, "20")
		check(t, "c1", memLimit, "47185920")
	}

	k.ok("patch", "pod", "rsz", "--subresource", "resize", "--type", "strategic", "-p",
		`{"spec":{"containers":[`+
			`{"name":"c1","resources":{"requests":{"cpu":"25m"},"limits":{"cpu":"35m","memory":"50Mi"}}},`+
			`{"name":"c2","resources":{"limits":{"memory":"50Mi"}}}]}}`)
	if g := jsonpath("pod/rsz", "{.metadata.generation}"); g != "2" {
		t.Fatalf("generation after the resize = %q, want 2", g)
	}
	waitFor(t, "resize done", 90*time.Second, func() (bool, string) {
		s := jsonpath("pod/rsz", `{.status.observedGeneration} {.status.conditions[?(@.type=="PodResizePending")].reason}`+
			`{.status.conditions[?(@.type=="PodResizeInProgress")].status} {.status.containerStatuses[1].restartCount}`+
			` {.status.conditions[?(@.type=="Ready")].status}`)
		return s == "2  1 True", s
	})

	t.Run("in place: cgroups and status follow, no restart", func(t *testing.T) {
		if !v2 {
			check(t, "c1", cpuLimit, "3500")
			check(t, "c1", cpuShares, "25")
			check(t, "c1", memLimit, "52428800")
		} else {
			check(t, "c1", cpuLimit, "3500 100000")
			check(t, "c1", memLimit, "52428800")
		}
		s := jsonpath("pod/rsz", `{.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].resources.requests.cpu}`+
			` {.status.containerStatuses[0].resources.limits.cpu} {.status.containerStatuses[0].resources.limits.memory}`+
			` {.status.containerStatuses[0].allocatedResources.cpu}`)
		if s != "0 25m 35m 50Mi 25m" {
			t.Errorf("c1 restarts, resources, allocated = %q, want \"0 25m 35m 50Mi 25m\"", s)
		}
	})

	t.Run("RestartContainer: restarted with the new limit", func(t *testing.T) {
		check(t, "c2", memLimit, "52428800")
		if s := jsonpath("pod/rsz", `{.status.containerStatuses[1].resources.limits.memory}`); s != "50Mi" {
			t.Errorf("c2 status memory limit = %q, want 50Mi", s)
		}
	})

	t.Run("a memory limit lowered in place", func(t *testing.T) {
		k.ok("patch", "pod", "rsz", "--subresource", "resize", "--type", "strategic", "-p",
			`{"spec":{"containers":[{"name":"c1","resources":{"limits":{"memory":"40Mi"}}}]}}`)
		waitFor(t, "resize done", 60*time.Second, func() (bool, string) {
			s := jsonpath("pod/rsz", `{.status.observedGeneration} {.status.conditions[?(@.type=="PodResizeInProgress")].message}`+
				` {.status.containerStatuses[0].resources.limits.memory} {.status.containerStatuses[0].restartCount}`)
			return s == "3  40Mi 0", s
		})
		check(t, "c1", memLimit, "41943040")
	})

	t.Run("a resize beyond the node is deferred", func(t *testing.T) {
		k.ok("patch", "pod", "rsz", "--subresource", "resize", "--type", "strategic", "-p",
			`{"spec":{"containers":[{"name":"c1","resources":{"requests":{"cpu":"1000"},"limits":{"cpu":"1000"}}}]}}`)
		waitFor(t, "PodResizePending", 60*time.Second, func() (bool, string) {
			s := jsonpath("pod/rsz", `{.status.conditions[?(@.type=="PodResizePending")].reason}`)
			return s == "Deferred", s
		})
		msg := jsonpath("pod/rsz", `{.status.conditions[?(@.type=="PodResizePending")].message}`)
		mustContain(t, "PodResizePending message", msg, "Node didn't have enough resource: cpu, requested: 1000020")
		if s := jsonpath("pod/rsz", `{.status.containerStatuses[0].allocatedResources.cpu}`); s != "25m" {
			t.Errorf("c1 allocated cpu while deferred = %q, want 25m", s)
		}
	})

	t.Run("invalid resizes are refused", func(t *testing.T) {
		out := k.fails("patch", "pod", "rsz", "--subresource", "resize", "--type", "json", "-p",
			`[{"op":"remove","path":"/spec/containers/0/resources/limits"}]`)
		mustContain(t, "kubectl output", out, "spec.containers[0].resources.limits: Forbidden: resource limits cannot be removed")
	})
}
