package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-io/skiff/internal/kubelet/containerd"
	"github.com/skiff-io/skiff/internal/kubelet/volume"
	"github.com/skiff-io/skiff/internal/podnet"
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
	return startNode(t, bin, imagesDir, nil, extraArgs)
}

// StartNodeIn is StartNode with the server and its node in the network
// namespace nn: the API server listens on nn.IP (the kubeconfig names it,
// so the host reaches it through the Network's bridge) and the node is
// named nn.Name.
func StartNodeIn(t testing.TB, bin, imagesDir string, nn *NetNode, extraArgs ...string) *Cluster {
	t.Helper()
	return startNode(t, bin, imagesDir, nn, extraArgs)
}

func startNode(t testing.TB, bin, imagesDir string, nn *NetNode, extraArgs []string) *Cluster {
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
	c := &Cluster{DataDir: dir, Kubeconfig: filepath.Join(dir, "admin.kubeconfig"), bin: bin, node: NodeName, netns: nn}
	bridge := "skiff0"
	if nn == nil {
		c.Port = FreePort(t)
		c.args = []string{"server", "--data-dir", dir, "--https-port", strconv.Itoa(c.Port),
			"--kubelet-port", strconv.Itoa(FreePort(t)), "--node-name", NodeName}
	} else {
		// Ports of its own namespace: the defaults.
		c.Port, c.node, bridge = 6443, nn.Name, ""
		c.args = []string{"server", "--data-dir", dir, "--bind-address", nn.IP,
			"--node-ip", nn.IP, "--node-name", nn.Name, "--cgroup-root", CgroupRoot(nn.Name)}
		t.Cleanup(func() { removeCgroups(CgroupRoot(nn.Name)) })
	}
	c.args = append(c.args, extraArgs...)
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Logf("stopping the server: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", tail(c.ServerLog(), 60))
		}
		// A namespace's bridge goes with the namespace.
		if err := containerd.Purge(filepath.Join(dir, "agent", "containerd"), bridge); err != nil {
			t.Logf("cleaning up containers: %v", err)
		}
		if nn == nil {
			// The pod network's masquerade outlives the agent, as the
			// pods do; in a namespace it goes with the namespace.
			_ = exec.Command("nft", "delete", "table", "ip", podnet.MasqueradeTable).Run()
		}
		removeDataDir(t, dir)
	})
	c.startBinary(t)
	c.WaitNodeReady(t, 90*time.Second)
	return c
}

// URL is the API server's address.
func (c *Cluster) URL() string {
	if c.netns != nil {
		return fmt.Sprintf("https://%s:%d", c.netns.IP, c.Port)
	}
	return fmt.Sprintf("https://127.0.0.1:%d", c.Port)
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
		n, err := c.Client.CoreV1().Nodes().Get(ctx, c.NodeName(), metav1.GetOptions{})
		if err == nil {
			l, lerr := c.Client.CoordinationV1().Leases("kube-node-lease").Get(ctx, c.NodeName(), metav1.GetOptions{})
			fresh := lerr == nil && l.Spec.RenewTime != nil && !l.Spec.RenewTime.Time.Before(since)
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue && fresh {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not Ready within %v (last error %v)\n%s", c.NodeName(), timeout, err, tail(c.ServerLog(), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// NodeName is the name of the server's node.
func (c *Cluster) NodeName() string {
	if c.node == "" {
		return NodeName
	}
	return c.node
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
	c       *Cluster
	bin     string
	args    []string
	netns   *NetNode
	cmd     *exec.Cmd
	exited  chan error
	log     string
}

// StartAgent starts `skiff agent` as a second node named name on this
// machine, joining c with token (a join string from `skiff token create`,
// or a bearer token c accepts through --token-auth-file), on its own data
// dir, kubelet port and bridge, in the host's network namespace (so
// without its own proxy and DNS, and no overlay: the server's node and it
// share every route). It waits until the node is Ready; t.Cleanup stops
// it and removes what its containerd left.
func StartAgent(t testing.TB, bin string, c *Cluster, name, token, bridge, imagesDir string) *Agent {
	t.Helper()
	t.Cleanup(func() { removeCgroups(CgroupRoot(name)) })
	args := []string{"--node-name", name, "--kubelet-port", strconv.Itoa(FreePort(t)), "--bridge", bridge, "--cgroup-root", CgroupRoot(name),
		// The server's node already runs the proxy and the DNS on this machine.
		"--disable-proxy", "--disable-dns"}
	if !strings.HasPrefix(token, "K10") {
		// A plain bearer token carries no CA hash: give the CA.
		args = append(args, "--ca-file", filepath.Join(c.DataDir, "tls", "ca.crt"))
	}
	return startAgent(t, bin, c, name, token, bridge, imagesDir, nil, args)
}

// StartAgentIn starts `skiff agent` as the node nn.Name in the network
// namespace nn, with everything a node on a machine of its own runs (its
// proxy, DNS and pod network), joining c with the join string token.
func StartAgentIn(t testing.TB, bin string, c *Cluster, nn *NetNode, token, imagesDir string, extraArgs ...string) *Agent {
	t.Helper()
	t.Cleanup(func() { removeCgroups(CgroupRoot(nn.Name)) })
	return startAgent(t, bin, c, nn.Name, token, "", imagesDir, nn, append([]string{"--node-name", nn.Name, "--cgroup-root", CgroupRoot(nn.Name)}, extraArgs...))
}

func startAgent(t testing.TB, bin string, c *Cluster, name, token, bridge, imagesDir string, nn *NetNode, extraArgs []string) *Agent {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "ska")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(imagesDir, filepath.Join(dir, "images")); err != nil {
		t.Fatal(err)
	}
	a := &Agent{Name: name, DataDir: dir, c: c, bin: bin, netns: nn, log: filepath.Join(dir, "agent.log")}
	a.args = append([]string{"agent", "--server", c.URL(), "--token", token, "--data-dir", dir}, extraArgs...)
	t.Cleanup(func() {
		a.Stop(t)
		if t.Failed() {
			t.Logf("agent %s log:\n%s", name, tail(a.Log(), 40))
		}
		if err := containerd.Purge(filepath.Join(dir, "agent", "containerd"), bridge); err != nil {
			t.Logf("cleaning up the agent's containers: %v", err)
		}
		removeDataDir(t, dir)
	})
	a.Start(t)
	a.WaitReady(t, 90*time.Second)
	return a
}

// Start starts the agent's process (again, after Stop or Kill9), on the
// same data dir.
func (a *Agent) Start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(a.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	a.cmd = exec.Command(a.bin, a.args...)
	if a.netns != nil {
		a.cmd = a.netns.Command(a.bin, a.args...)
	}
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	a.exited = exited
	go func() { exited <- a.cmd.Wait(); logf.Close() }()
}

// Stop stops the agent (SIGTERM, SIGKILL after 30s) if it runs.
func (a *Agent) Stop(t testing.TB) {
	if a.exited == nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(30 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.exited
	}
	a.exited = nil
}

// Kill9 kills the agent and the containerd it started with SIGKILL, as a
// crash of the node's software would: the containers keep running.
func (a *Agent) Kill9(t testing.TB) {
	t.Helper()
	if a.exited == nil {
		t.Fatal("Kill9: the agent is not running")
	}
	_ = a.cmd.Process.Kill()
	<-a.exited
	a.exited = nil
	b, err := os.ReadFile(filepath.Join(a.DataDir, "agent", "containerd", "containerd.pid"))
	if err != nil {
		t.Fatalf("Kill9: containerd's pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("Kill9: containerd's pid file holds %q", b)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// WaitReady waits until the agent's node reports Ready.
func (a *Agent) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	since := time.Now().Add(-time.Second)
	for {
		ctx := context.Background()
		n, err := a.c.Client.CoreV1().Nodes().Get(ctx, a.Name, metav1.GetOptions{})
		if err == nil {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue && cond.LastHeartbeatTime.After(since) {
					return
				}
			}
		}
		select {
		case err := <-a.exited:
			a.exited = nil
			t.Fatalf("agent %s exited (%v) before its node was Ready\n%s", a.Name, err, tail(a.Log(), 40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent node %s not Ready within %v\n%s", a.Name, timeout, tail(a.Log(), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Pid is the agent process's pid (0 when it is not running).
func (a *Agent) Pid() int {
	if a.exited == nil {
		return 0
	}
	return a.cmd.Process.Pid
}

// Log is the agent's output so far.
func (a *Agent) Log() string {
	b, _ := os.ReadFile(a.log)
	return string(b)
}

// CgroupRoot is the --cgroup-root the framework gives the node named
// name, when it shares the machine with other nodes: each kubelet keeps
// its pods in a cgroup tree of its own.
func CgroupRoot(name string) string { return "/skiff-" + name }

// removeCgroups removes what is left of the cgroup tree root (empty
// cgroups whose processes are gone) in every hierarchy, deepest first.
func removeCgroups(root string) {
	trees, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", root))
	trees = append(trees, filepath.Join("/sys/fs/cgroup", root))
	for _, tree := range trees {
		var dirs []string
		_ = filepath.WalkDir(tree, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = os.Remove(dirs[i])
		}
	}
}

// removeDataDir unmounts what a node left mounted below dir (its pods'
// volumes: a node stopped with pods running does not unmount them) and
// removes dir.
func removeDataDir(t testing.TB, dir string) {
	t.Helper()
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		var mounts []string
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 {
				if mp := volume.UnescapeMountInfo(f[4]); strings.HasPrefix(mp, dir+"/") {
					mounts = append(mounts, mp)
				}
			}
		}
		// Deepest first.
		sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
		for _, m := range mounts {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
				t.Logf("unmounting %s: %v", m, err)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Logf("removing %s: %v", dir, err)
	}
}

// JoinString makes a join token with `bin token create` (30 minute TTL)
// against c and returns the join string the command prints last
// (K10<CA hash>::<id>.<secret>).
func JoinString(t testing.TB, bin string, c *Cluster) string {
	t.Helper()
	out, err := exec.Command(bin, "token", "create", "--kubeconfig", c.Kubeconfig, "--ttl", "30m", "--description", "test").CombinedOutput()
	if err != nil {
		t.Fatalf("skiff token create: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	join := lines[len(lines)-1]
	if !strings.HasPrefix(join, "K10") || !strings.Contains(join, "::") {
		t.Fatalf("skiff token create printed %q, want a join string K10<hash>::<id>.<secret> last", out)
	}
	return join
}
