package e2e

import (
	"bufio"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/skiff-io/skiff/test/framework"
)

// TestEphemeralContainers debugs a running pod on a real node with the
// stock kubectl, as upstream's conformance tests "Ephemeral Containers
// will start an ephemeral container in an existing pod" and "should
// update the ephemeral containers in an existing pod" do through the API:
// `kubectl debug --target` adds a container that runs in the target's
// process namespace and whose logs, exec and attach work; a second one,
// added by a patch of pods/ephemeralcontainers, exits and is not
// restarted although the pod's restartPolicy is Always; neither changes
// the pod's phase or readiness; deleting the pod stops them with it.
func TestEphemeralContainers(t *testing.T) {
	if why := framework.CanRunContainers(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	images := t.TempDir()
	framework.BuildImages(t, images)
	// A node in a network namespace of its own: its pod bridge and
	// addresses cannot meet those of another test's node on this machine.
	network := framework.NewNetwork(t, "skeph0", "10.199.87.0/24")
	c := framework.StartNodeIn(t, skiffBin, images, network.AddNode(t, "skeph-node"))
	k := kubectl{t: t, c: c}
	const busybox = "docker.io/library/busybox:1.36"
	waitFor, jsonpath := k.waitFor, k.jsonpath

	k.ok("run", "target", "--image="+busybox, "--", "sh", "-c", "sleep 3600")
	waitFor(t, "target Running and Ready", 90*time.Second, func() (bool, string) {
		s := jsonpath("pod/target", `{.status.phase} {.status.conditions[?(@.type=="Ready")].status}`)
		return s == "Running True", s
	})
	if g := jsonpath("pod/target", "{.metadata.generation}"); g != "1" {
		t.Fatalf("generation of the new pod = %q, want 1", g)
	}

	t.Run("kubectl debug starts a container in the target's process namespace", func(t *testing.T) {
		k.t = t
		k.ok("debug", "target", "--image="+busybox, "--target=target", "-c", "debugger",
			"--", "sh", "-c", "while true; do echo polo; sleep 1; done")
		waitFor(t, "debugger running", 90*time.Second, func() (bool, string) {
			s := jsonpath("pod/target", `{.status.ephemeralContainerStatuses[?(@.name=="debugger")].state}`)
			return strings.Contains(s, `"running"`), s
		})
		if g := jsonpath("pod/target", "{.metadata.generation}"); g != "2" {
			t.Errorf("generation after kubectl debug = %q, want 2", g)
		}
		// Upstream reports an ephemeral container never ready; the pod's
		// own readiness does not depend on it.
		s := jsonpath("pod/target", `{.status.ephemeralContainerStatuses[0].ready} {.status.phase} {.status.conditions[?(@.type=="Ready")].status}`)
		if s != "false Running True" {
			t.Errorf("ready, phase, Ready = %q, want \"false Running True\"", s)
		}
		// The target's processes are the debugger's to see.
		ps := k.ok("exec", "target", "-c", "debugger", "--", "ps")
		mustContain(t, "ps in the debugger", ps, "sleep 3600")
	})

	t.Run("logs, exec and attach reach it", func(t *testing.T) {
		k.t = t
		waitFor(t, "debugger's logs", 30*time.Second, func() (bool, string) {
			out, _ := k.run("", "logs", "target", "-c", "debugger")
			return strings.Contains(out, "polo"), out
		})
		if out := k.ok("exec", "target", "-c", "debugger", "--", "echo", "marco"); strings.TrimSpace(out) != "marco" {
			t.Errorf("exec echo marco in the debugger = %q", out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "kubectl", "--kubeconfig", c.Kubeconfig, "attach", "target", "-c", "debugger")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		sc := bufio.NewScanner(out)
		var seen []string
		for sc.Scan() {
			if seen = append(seen, sc.Text()); strings.Contains(sc.Text(), "polo") {
				return
			}
		}
		t.Fatalf("kubectl attach -c debugger gave no polo: %q", seen)
	})

	t.Run("a patch of the subresource adds one that is never restarted", func(t *testing.T) {
		k.t = t
		k.ok("patch", "pod", "target", "--subresource=ephemeralcontainers", "--type=strategic", "-p",
			`{"spec":{"ephemeralContainers":[{"name":"once","image":"`+busybox+`","command":["sh","-c","echo bye; exit 3"]}]}}`)
		state := `{.status.ephemeralContainerStatuses[?(@.name=="once")].state.terminated.exitCode} {.status.ephemeralContainerStatuses[?(@.name=="once")].restartCount}`
		waitFor(t, "once terminated", 90*time.Second, func() (bool, string) {
			s := jsonpath("pod/target", state)
			return s == "3 0", s
		})
		if out := k.ok("logs", "target", "-c", "once"); strings.TrimSpace(out) != "bye" {
			t.Errorf("logs of the exited ephemeral container = %q, want bye", out)
		}
		// Past a few syncs and relists it stays terminated, not restarted.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if s := jsonpath("pod/target", state); s != "3 0" {
				t.Fatalf("the exited ephemeral container changed: %q (restarted?)", s)
			}
			time.Sleep(500 * time.Millisecond)
		}
		// A strategic merge patch puts new list entries first.
		if n := jsonpath("pod/target", "{.spec.ephemeralContainers[*].name}"); n != "once debugger" {
			t.Errorf("ephemeral containers = %q, want \"once debugger\"", n)
		}
		// The main resource cannot take them away.
		out := k.fails("patch", "pod", "target", "--type=json", "-p", `[{"op":"remove","path":"/spec/ephemeralContainers"}]`)
		mustContain(t, "removing ephemeral containers through the pod", out, "Forbidden", "pod updates may not change fields")
	})

	t.Run("deleting the pod stops them", func(t *testing.T) {
		k.t = t
		k.ok("delete", "pod", "target", "--timeout=90s")
		if out, _ := k.run("", "get", "pod", "target"); !strings.Contains(out, "NotFound") {
			t.Fatalf("pod still there after delete: %s", out)
		}
	})
}
