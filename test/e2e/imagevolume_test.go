package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-io/skiff/test/framework"
)

// TestImageVolume mounts an image's root filesystem as a pod volume
// (`image` volumes; containerd 1.6's CRI cannot mount images, so the
// kubelet does it through ctr): a container reads the image's files,
// whole and through a subPath, and cannot write to them; on the node the
// mount lives under the pod's directory with containerd's lease, a
// restart of skiff leaves it as it is, and deleting the pod unmounts it
// and releases the lease and the view. With
// a registry, pullPolicy Always pulls the image through CRI (directly, and
// through a mirror that containerd's certs.d names), and an image that
// cannot be pulled holds the container in ErrImagePull.
func TestImageVolume(t *testing.T) {
	if why := framework.CanRunContainers(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	images := t.TempDir()
	framework.BuildImages(t, images)
	c := framework.StartNode(t, skiffBin, images)
	k := kubectl{t: t, c: c}
	waitFor, jsonpath := k.waitFor, k.jsonpath

	const busybox = "docker.io/library/busybox:1.36"
	sock := filepath.Join(c.DataDir, "agent", "containerd", "containerd.sock")
	ctr := func(t *testing.T, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", sock, "-n", "k8s.io"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// volumeDir is where the kubelet mounts the pod's image volume.
	volumeDir := func(uid, name string) string {
		return filepath.Join(c.DataDir, "agent", "pods", uid, "volumes", "kubernetes.io~image", name)
	}
	// mounts counts the mounts on dir on the node.
	mounts := func(t *testing.T, dir string) int {
		t.Helper()
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
				n++
			}
		}
		return n
	}
	pod := func(name, ref, policy string, mounts string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    command: ["sleep", "3600"]
    volumeMounts:
%s
  volumes:
  - name: img
    image:
      reference: %s
      pullPolicy: %s
`, name, busybox, mounts, ref, policy)
	}
	waitRunning := func(t *testing.T, name string) {
		t.Helper()
		waitFor(t, name+" Running", 60*time.Second, func() (bool, string) {
			s := jsonpath("pod/"+name, `{.status.phase} {.status.containerStatuses[0].state.waiting.reason} {.status.containerStatuses[0].state.waiting.message}`)
			return strings.HasPrefix(s, "Running"), s
		})
	}

	t.Run("a container reads the image's files, whole and through a subPath, read-only", func(t *testing.T) {
		k.t = t
		k.okIn(pod("reader", busybox, "IfNotPresent", `    - name: img
      mountPath: /img
    - name: img
      mountPath: /img-etc
      subPath: etc
    - name: img
      mountPath: /img-passwd
      subPath: etc/passwd
      readOnly: false`), "apply", "-f", "-")
		waitRunning(t, "reader")
		out := k.ok("exec", "reader", "--", "sh", "-c", "cat /img/etc/passwd; cat /img-etc/group; cat /img-passwd")
		if strings.Count(out, "root:x:0:0:") != 2 || !strings.Contains(out, "root:x:0:") {
			t.Fatalf("files read from the image volume:\n%s", out)
		}
		for _, path := range []string{"/img/new", "/img-etc/new", "/img-passwd"} {
			out, err := k.run("", "exec", "reader", "--", "sh", "-c", "echo x >> "+path)
			if err == nil || !strings.Contains(out, "Read-only file system") {
				t.Errorf("writing %s: %v %q, want a read-only file system", path, err, out)
			}
		}

		// Read-only mounts in the container. (Not noexec: runc remounts a
		// read-only bind with the CRI's flags only; see compatibility.md.)
		for _, line := range strings.Split(strings.TrimSpace(k.ok("exec", "reader", "--", "grep", " /img", "/proc/mounts")), "\n") {
			if f := strings.Fields(line); len(f) < 4 || !strings.HasPrefix(f[3], "ro,") {
				t.Errorf("container mount %q is not read-only", line)
			}
		}
		uid := jsonpath("pod/reader", "{.metadata.uid}")
		dir := volumeDir(uid, "img")
		if n := mounts(t, dir); n != 1 {
			t.Fatalf("%d mounts on %s on the node, want 1", n, dir)
		}
		if out := ctr(t, "leases", "ls"); !strings.Contains(out, dir) {
			t.Fatalf("containerd has no lease for %s:\n%s", dir, out)
		}

		// A restarted node agent finds the volume mounted and leaves it.
		c.Restart(t)
		waitFor(t, "reader Running and Ready after the restart", 60*time.Second, func() (bool, string) {
			s := jsonpath("pod/reader", `{.status.phase} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount}`)
			return s == "Running true 0", s
		})
		// The status read above may predate the restart: wait for exec,
		// which needs the new kubelet.
		waitFor(t, "exec after the restart", 60*time.Second, func() (bool, string) {
			out, err := k.run("", "exec", "reader", "--", "cat", "/img/etc/passwd")
			return err == nil && strings.Contains(out, "root:x:0:0:"), out
		})
		if s := jsonpath("pod/reader", `{.status.containerStatuses[0].restartCount}`); s != "0" {
			t.Errorf("restartCount %s after the restart, want 0", s)
		}
		if n := mounts(t, dir); n != 1 {
			t.Fatalf("%d mounts on %s after the restart, want 1", n, dir)
		}

		k.ok("delete", "pod", "reader", "--wait=true")
		waitFor(t, "the image volume released", 30*time.Second, func() (bool, string) {
			leases, views := ctr(t, "leases", "ls"), ctr(t, "snapshots", "ls")
			n := mounts(t, dir)
			return n == 0 && !strings.Contains(leases, dir) && !strings.Contains(views, dir),
				fmt.Sprintf("%d mounts\nleases:\n%s\nsnapshots:\n%s", n, leases, views)
		})
	})

	t.Run("pullPolicy Never with the image missing holds the container in ErrImageNeverPull", func(t *testing.T) {
		k.t = t
		k.okIn(pod("never", "example.com/no/such:1", "Never", `    - name: img
      mountPath: /img`), "apply", "-f", "-")
		waitFor(t, "never waiting ErrImageNeverPull", 30*time.Second, func() (bool, string) {
			s := jsonpath("pod/never", `{.status.phase} {.status.containerStatuses[0].state.waiting.reason} {.status.containerStatuses[0].state.waiting.message}`)
			return strings.HasPrefix(s, "Pending ErrImageNeverPull") && strings.Contains(s, `"example.com/no/such:1" is not present with pull policy of Never`), s
		})
	})

	if why := framework.CanRunRegistry(); why != "" {
		t.Logf("not testing pulls: %s", why)
		return
	}
	reg := framework.StartRegistry(t)
	t.Run("pullPolicy Always pulls the image through CRI", func(t *testing.T) {
		k.t = t
		ref := reg.Host + "/test/volume:1"
		ctr(t, "images", "tag", busybox, ref)
		ctr(t, "images", "push", "--plain-http", ref)
		ctr(t, "images", "rm", ref)
		k.okIn(pod("pulled", ref, "Always", `    - name: img
      mountPath: /img`), "apply", "-f", "-")
		waitRunning(t, "pulled")
		if out := k.ok("exec", "pulled", "--", "cat", "/img/etc/passwd"); !strings.Contains(out, "root:x:0:0:") {
			t.Fatalf("/img/etc/passwd from the pulled image: %q", out)
		}
		evs := k.ok("get", "events", "--field-selector", "involvedObject.name=pulled", "-o", `jsonpath={range .items[*]}{.reason}: {.message}{"\n"}{end}`)
		if !strings.Contains(evs, fmt.Sprintf("Pulling: Pulling image %q", ref)) {
			t.Errorf("no Pulling event for the volume's image:\n%s", evs)
		}

		k.okIn(pod("unpullable", reg.Host+"/test/volume:no-such-tag", "Always", `    - name: img
      mountPath: /img`), "apply", "-f", "-")
		waitFor(t, "unpullable waiting ErrImagePull", 30*time.Second, func() (bool, string) {
			s := jsonpath("pod/unpullable", `{.status.phase} {.status.containerStatuses[0].state.waiting.reason}`)
			return s == "Pending ErrImagePull" || s == "Pending ImagePullBackOff", s
		})
	})

	// The conformance harness serves registry.k8s.io's images this way.
	t.Run("a registry mirror in containerd's certs.d serves an image volume", func(t *testing.T) {
		k.t = t
		const ref = "registry.k8s.io/e2e-test-images/skiff-volume:1"
		mirrored := reg.Host + "/e2e-test-images/skiff-volume:1"
		ctr(t, "images", "tag", busybox, mirrored)
		ctr(t, "images", "push", "--plain-http", mirrored)
		ctr(t, "images", "rm", mirrored)
		hostsDir := filepath.Join(filepath.Dir(sock), "certs.d", "registry.k8s.io")
		if err := os.MkdirAll(hostsDir, 0o755); err != nil {
			t.Fatal(err)
		}
		hosts := fmt.Sprintf("server = \"https://registry.k8s.io\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", reg.Host)
		if err := os.WriteFile(filepath.Join(hostsDir, "hosts.toml"), []byte(hosts), 0o644); err != nil {
			t.Fatal(err)
		}
		k.okIn(pod("mirrored", ref, "Always", `    - name: img
      mountPath: /img`), "apply", "-f", "-")
		waitRunning(t, "mirrored")
		if out := k.ok("exec", "mirrored", "--", "cat", "/img/etc/passwd"); !strings.Contains(out, "root:x:0:0:") {
			t.Fatalf("/img/etc/passwd from the mirrored image: %q", out)
		}
	})
}
