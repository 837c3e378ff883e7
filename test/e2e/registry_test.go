package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skiff-io/skiff/test/framework"
)

// TestRegistry pulls images through CRI from real registries on loopback
// (Debian's docker-registry, the Distribution registry): the busybox image
// is pushed from the node's own containerd and its local tag removed, so
// every pod below makes containerd fetch it. It covers imagePullPolicy
// Always, the Pulling/Pulled events, a missing tag's ErrImagePull then
// ImagePullBackOff, and credentials from imagePullSecrets against a
// registry that demands basic auth.
func TestRegistry(t *testing.T) {
	if why := framework.CanRunContainers(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	if why := framework.CanRunRegistry(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	images := t.TempDir()
	framework.BuildImages(t, images)
	c := framework.StartNode(t, skiffBin, images)
	k := kubectl{t: t, c: c}
	open := framework.StartRegistry(t)
	const user, password = "puller", "s3cret-pull"
	private := framework.StartRegistry(t, framework.WithBasicAuth(user, password))

	const busybox = "docker.io/library/busybox:1.36"
	ctr := func(t *testing.T, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		sock := filepath.Join(c.DataDir, "agent", "containerd", "containerd.sock")
		out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", sock, "-n", "k8s.io"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	localRefs := func(t *testing.T) []string {
		return strings.Fields(ctr(t, "images", "ls", "-q"))
	}
	// push puts busybox into reg as repo and removes the node's tag of it.
	push := func(t *testing.T, reg *framework.Registry, repo string, pushArgs ...string) string {
		t.Helper()
		ref := reg.Host + "/" + repo
		ctr(t, "images", "tag", busybox, ref)
		ctr(t, append(append([]string{"images", "push", "--plain-http"}, pushArgs...), ref)...)
		ctr(t, "images", "rm", ref)
		if slices.Contains(localRefs(t), ref) {
			t.Fatalf("%s is still on the node after ctr images rm", ref)
		}
		return ref
	}
	waitFor, jsonpath := k.waitFor, k.jsonpath
	waitRunning := func(t *testing.T, pod string) {
		t.Helper()
		waitFor(t, pod+" Running", 40*time.Second, func() (bool, string) {
			s := jsonpath("pod/"+pod, `{.status.phase} {.status.containerStatuses[0].state.waiting.reason} {.status.containerStatuses[0].state.waiting.message}`)
			return strings.HasPrefix(s, "Running"), s
		})
	}
	// events are the "reason: message" lines of pod's events.
	events := func(pod string) []string {
		out, _ := k.run("", "get", "events", "--field-selector", "involvedObject.name="+pod,
			"-o", `jsonpath={range .items[*]}{.reason}: {.message}{"\n"}{end}`)
		return strings.Split(strings.TrimSpace(out), "\n")
	}
	waitEvent := func(t *testing.T, pod, reason, msgPart string) {
		t.Helper()
		waitFor(t, fmt.Sprintf("%s event %s %q", pod, reason, msgPart), 20*time.Second, func() (bool, string) {
			evs := events(pod)
			return slices.ContainsFunc(evs, func(e string) bool {
				return strings.HasPrefix(e, reason+": ") && strings.Contains(e, msgPart)
			}), strings.Join(evs, " | ")
		})
	}
	// waitReasons waits until pod's container has been seen waiting for
	// each of want in that order.
	waitReasons := func(t *testing.T, pod string, timeout time.Duration, want ...string) {
		t.Helper()
		var seen []string
		waitFor(t, fmt.Sprintf("%s waiting for %v", pod, want), timeout, func() (bool, string) {
			s := jsonpath("pod/"+pod, `{.status.phase} {.status.containerStatuses[0].state.waiting.reason}`)
			if f := strings.Fields(s); len(f) == 2 && (len(seen) == 0 || seen[len(seen)-1] != f[1]) {
				seen = append(seen, f[1])
			}
			i := 0
			for _, r := range seen {
				if i < len(want) && r == want[i] {
					i++
				}
			}
			return i == len(want), fmt.Sprintf("%s (seen %v)", s, seen)
		})
	}

	t.Run("pull with policy Always reaches Running", func(t *testing.T) {
		k.t = t
		ref := push(t, open, "test/busybox:pushed")
		k.ok("run", "pulled", "--image="+ref, "--image-pull-policy=Always", "--", "sleep", "3600")
		waitRunning(t, "pulled")
		waitEvent(t, "pulled", "Pulling", ref)
		waitEvent(t, "pulled", "Pulled", "Successfully pulled image")
		if !slices.Contains(localRefs(t), ref) {
			t.Fatalf("%s is not in the node's containerd after the pull: %v", ref, localRefs(t))
		}
		if id := jsonpath("pod/pulled", "{.status.containerStatuses[0].imageID}"); id == "" {
			t.Fatalf("pulled: no imageID in the container status")
		}
	})

	t.Run("a missing tag shows ErrImagePull then ImagePullBackOff", func(t *testing.T) {
		k.t = t
		ref := open.Host + "/test/busybox:no-such-tag"
		k.ok("run", "missing", "--image="+ref, "--", "sleep", "3600")
		waitReasons(t, "missing", 30*time.Second, "ErrImagePull", "ImagePullBackOff")
		waitEvent(t, "missing", "Failed", "Failed to pull image")
		waitEvent(t, "missing", "BackOff", "Back-off pulling image")
		if phase := jsonpath("pod/missing", "{.status.phase}"); phase != "Pending" {
			t.Fatalf("missing: phase %q, want Pending", phase)
		}
	})

	t.Run("a registry with auth needs imagePullSecrets", func(t *testing.T) {
		k.t = t
		ref := push(t, private, "test/busybox:private", "--user", user+":"+password)

		k.ok("run", "anonymous", "--image="+ref, "--image-pull-policy=Always", "--", "sleep", "3600")
		waitReasons(t, "anonymous", 30*time.Second, "ErrImagePull")
		waitEvent(t, "anonymous", "Failed", "Failed to pull image")

		k.ok("create", "secret", "docker-registry", "regcred", "--docker-server="+private.Host,
			"--docker-username="+user, "--docker-password="+password)
		k.okIn(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: authorized
spec:
  imagePullSecrets:
  - name: regcred
  containers:
  - name: main
    image: %s
    imagePullPolicy: Always
    command: ["sleep", "3600"]
`, ref), "apply", "-f", "-")
		waitRunning(t, "authorized")
		waitEvent(t, "authorized", "Pulled", "Successfully pulled image")
		// The anonymous pod still fails: the secret is not its.
		if r := jsonpath("pod/anonymous", "{.status.containerStatuses[0].state.waiting.reason}"); r != "ErrImagePull" && r != "ImagePullBackOff" {
			t.Fatalf("anonymous: waiting reason %q after the secret exists, want ErrImagePull or ImagePullBackOff", r)
		}
	})
}
