package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-io/skiff/internal/kubelet/containerd"
)

// NodeName is the name of the node StartNode's server registers.
const NodeName = "skiff-e2e"

// CanRunContainers says why this machine cannot run real pods, or "" when
// it can: root, containerd, runc, ctr and the CNI bridge plugin.
func CanRunContainers() string {
	if os.Geteuid() != 0 {
		return "real pods need root"
	}
	for _, bin := range []string{"containerd", "runc", "ctr"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " is not installed (apt-get install containerd runc)"
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		return "the CNI plugins are not installed (apt-get install containernetworking-plugins)"
	}
	return ""
}

// BuildImages writes the test images (pause, busybox, the test server v1
// and v2) into dir, as `make images` does.
func BuildImages(t testing.TB, dir string) {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("finding the module: %v", err)
	}
	cmd := exec.Command("go", "run", "./test/images/build", "-out", dir)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building test images: %v\n%s", err, out)
	}
}

// StartNode starts the built skiff binary as a whole one-node cluster:
// `skiff server` with its node agent (its own containerd, the kubelet) on a
// short temp data dir, importing the image tarballs of imagesDir at start.
// It returns once the node is Ready. In t.Cleanup it stops the server and
// removes every container, mount and the bridge it left. It skips the test
// when the machine cannot run containers, saying why.
func StartNode(t testing.TB, bin, imagesDir string, extraArgs ...string) *Cluster {
	t.Helper()
	if why := CanRunContainers(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	// A short path: containerd's socket lives below it.
	dir, err := os.MkdirTemp("/tmp", "skn")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(imagesDir, filepath.Join(dir, "images")); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	c := &Cluster{DataDir: dir, Kubeconfig: filepath.Join(dir, "admin.kubeconfig"), Port: port, bin: bin}
	c.args = append([]string{"server", "--data-dir", dir, "--https-port", strconv.Itoa(port),
		"--kubelet-port", strconv.Itoa(FreePort(t)), "--node-name", NodeName}, extraArgs...)
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Logf("stopping the server: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", tail(c.ServerLog(), 60))
		}
		if err := containerd.Purge(filepath.Join(dir, "agent", "containerd"), "skiff0"); err != nil {
			t.Logf("cleaning up containers: %v", err)
		}
		_ = os.RemoveAll(dir)
	})
	c.startBinary(t)
	c.WaitNodeReady(t, 90*time.Second)
	return c
}

// WaitNodeReady waits until the node reports Ready and its kubelet has
// renewed the node's Lease since the server (re)started: a restarted
// server's node still shows the Ready of the run before.
func (c *Cluster) WaitNodeReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	since := c.started.Truncate(time.Second)
	for {
		ctx := context.Background()
		n, err := c.Client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err == nil {
			l, lerr := c.Client.CoordinationV1().Leases("kube-node-lease").Get(ctx, NodeName, metav1.GetOptions{})
			fresh := lerr == nil && l.Spec.RenewTime != nil && !l.Spec.RenewTime.Time.Before(since)
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue && fresh {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not Ready within %v (last error %v)\n%s", NodeName, timeout, err, tail(c.ServerLog(), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := 0
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			lines++
			if lines > n {
				return fmt.Sprintf("...\n%s", s[i+1:])
			}
		}
	}
	return s
}

// Agent is a `skiff agent` process joined to a cluster.
type Agent struct {
	Name    string
	DataDir string
	cmd     *exec.Cmd
	exited  chan error
	log     string
}

// StartAgent starts `skiff agent` as a second node named name on this
// machine, joining c with token (a join string from `skiff token create`,
// or a bearer token c accepts through --token-auth-file), on its own data
// dir, kubelet port and bridge. It waits until the node is
// Ready; t.Cleanup stops it and removes what its containerd left.
func StartAgent(t testing.TB, bin string, c *Cluster, name, token, bridge, imagesDir string) *Agent {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "ska")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(imagesDir, filepath.Join(dir, "images")); err != nil {
		t.Fatal(err)
	}
	a := &Agent{Name: name, DataDir: dir, exited: make(chan error, 1), log: filepath.Join(dir, "agent.log")}
	logf, err := os.Create(a.log)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"agent", "--server", fmt.Sprintf("https://127.0.0.1:%d", c.Port), "--token", token,
		"--data-dir", dir, "--node-name", name, "--kubelet-port", strconv.Itoa(FreePort(t)), "--bridge", bridge,
		// The server's node already runs the proxy and the DNS on this machine.
		"--disable-proxy", "--disable-dns"}
	if !strings.HasPrefix(token, "K10") {
		// A plain bearer token carries no CA hash: give the CA.
		args = append(args, "--ca-file", filepath.Join(c.DataDir, "tls", "ca.crt"))
	}
	a.cmd = exec.Command(bin, args...)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.exited <- a.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.exited:
		case <-time.After(30 * time.Second):
			_ = a.cmd.Process.Kill()
			<-a.exited
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", tail(a.Log(), 40))
		}
		if err := containerd.Purge(filepath.Join(dir, "agent", "containerd"), bridge); err != nil {
			t.Logf("cleaning up the agent's containers: %v", err)
		}
		_ = os.RemoveAll(dir)
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		n, err := c.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					return a
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent node %s not Ready within 90s\n%s", name, tail(a.Log(), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Log is the agent's output so far.
func (a *Agent) Log() string {
	b, _ := os.ReadFile(a.log)
	return string(b)
}
