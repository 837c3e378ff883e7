package e2e

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-io/skiff/test/framework"
)

// TestKillall stops a node whose server has exited but whose pods run on
// (stopping skiff leaves them by design) with `skiff killall`, checks that
// nothing of the node is left on the host but its data, that a second
// killall finds nothing to do, and that the server starts clean on the
// same data dir afterwards.
//
// Once after a clean stop (the server stopped its containerd, the proxy
// its table, the DNS its interface: killall starts skiff's containerd to
// stop the pods through it) and once after SIGKILL (containerd, the
// table and the interface outlive the server).
func TestKillall(t *testing.T) {
	if why := framework.CanRunContainers(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	images := t.TempDir()
	framework.BuildImages(t, images)
	t.Run("after SIGTERM", func(t *testing.T) {
		testKillall(t, images, func(c *framework.Cluster) {
			if err := c.Stop(); err != nil {
				t.Fatalf("stopping the server: %v", err)
			}
		}, nil)
	})
	t.Run("after SIGKILL", func(t *testing.T) {
		testKillall(t, images, func(c *framework.Cluster) { c.Kill9(t) },
			[]string{"stopped skiff's containerd (pid", "deleted interface skiff-dns", "deleted nftables table ip skiff"})
	})
}

func testKillall(t *testing.T, images string, stop func(*framework.Cluster), wantShared []string) {
	c := framework.StartNode(t, skiffBin, images)
	dir := c.DataDir
	killall := func() (string, error) {
		out, err := exec.Command(skiffBin, "killall", "--data-dir", dir, "--grace-period", "1s").CombinedOutput()
		return string(out), err
	}
	// Runs before StartNode's cleanup (which purges what containerd
	// left and removes the dir): stop whatever a failed test left running.
	t.Cleanup(func() {
		if out, err := killall(); err != nil {
			t.Logf("killall in cleanup: %v\n%s", err, out)
		}
	})
	k := kubectl{t: t, c: c}
	k.ok("run", "bb", "--image=docker.io/library/busybox:1.36", "--", "sleep", "3600")
	running := func(t *testing.T) {
		k.t = t
		k.waitFor(t, "bb Running", 60*time.Second, func() (bool, string) {
			s := k.jsonpath("pod/bb", `{.status.phase} {.status.conditions[?(@.type=="Ready")].status}`)
			return s == "Running True", s
		})
	}
	running(t)

	// The server stops; the pod's processes (its shim) stay.
	stop(c)
	socket := filepath.Join(dir, "agent", "containerd", "containerd.sock")
	if len(procsReferencing(socket)) == 0 {
		t.Fatal("no shim of skiff's containerd runs after the server stopped: nothing for killall to do")
	}

	others := otherSkiffNodes(dir)
	out, err := killall()
	t.Logf("skiff killall:\n%s", out)
	if err != nil {
		t.Fatalf("skiff killall: %v", err)
	}
	want := []string{"stopped pod sandbox", "unmounted "}
	if !others {
		want = append(want, wantShared...)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("killall's output lacks %q", w)
		}
	}
	if p := procsReferencing(dir); len(p) > 0 {
		t.Errorf("processes still reference %s: %v", dir, p)
	}
	if conn, err := net.DialTimeout("unix", socket, time.Second); err == nil {
		conn.Close()
		t.Errorf("something still serves %s", socket)
	}
	if m := mountsBelow(t, dir); len(m) > 0 {
		t.Errorf("still mounted below %s: %v", dir, m)
	}
	if others {
		t.Log("another skiff node runs on this machine: not checking the bridge, skiff-dns and the nftables table, which it may use")
	} else {
		if _, err := os.Stat("/sys/class/net/skiff0"); err == nil {
			t.Error("bridge skiff0 still exists")
		}
		if _, err := os.Stat("/sys/class/net/skiff-dns"); err == nil {
			t.Error("interface skiff-dns still exists")
		}
		tables, err := exec.Command("nft", "list", "tables").CombinedOutput()
		if err != nil {
			t.Fatalf("nft list tables: %v\n%s", err, tables)
		}
		if strings.Contains(string(tables)+"\n", "table ip skiff\n") {
			t.Errorf("nftables table ip skiff still exists:\n%s", tables)
		}
	}
	for _, keep := range []string{"etcd", "tls", "admin.kubeconfig"} {
		if _, err := os.Stat(filepath.Join(dir, keep)); err != nil {
			t.Errorf("killall removed the data: %v", err)
		}
	}

	out, err = killall()
	if err != nil {
		t.Fatalf("second skiff killall: %v\n%s", err, out)
	}
	if strings.Contains(out, "stopped") || strings.Contains(out, "unmounted") || strings.Contains(out, "deleted") {
		t.Errorf("second killall did something:\n%s", out)
	}

	// `make run` afterwards starts clean: the node comes back Ready and
	// the pod runs again.
	c.Restart(t)
	c.WaitNodeReady(t, 90*time.Second)
	running(t)
}

// procsReferencing lists the command lines of the processes that name s
// on theirs.
func procsReferencing(s string) []string {
	var out []string
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), s) {
			out = append(out, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

// otherSkiffNodes reports whether a skiff server or agent of another data
// dir runs on this machine (another test, a developer's `make run`).
func otherSkiffNodes(dir string) bool {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		argv := strings.Split(string(b), "\x00")
		if len(argv) < 2 || !strings.HasPrefix(filepath.Base(argv[0]), "skiff") || !strings.Contains(string(b), "\x00server\x00") && !strings.Contains(string(b), "\x00agent\x00") {
			continue
		}
		if !strings.Contains(string(b), dir) {
			return true
		}
	}
	return false
}

// mountsBelow lists the mount points below dir in this process's mount
// namespace.
func mountsBelow(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) >= 5 && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	return out
}
