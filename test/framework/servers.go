package framework

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// StartServerIn starts the built binary as a control-plane-only server
// (`skiff server --disable-agent`) in the network namespace nn, on the
// default ports of its own namespace (the API at nn.IP:6443, etcd at
// 2379 and 2380), named nn.Name: one server of a cluster of servers,
// given --cluster-init or --server and --token in extraArgs. It returns
// once the server is ready. Restart (after Kill9, too) starts it again on
// its data dir; t.Cleanup stops it and removes the data dir.
func StartServerIn(t testing.TB, bin string, nn *NetNode, extraArgs ...string) *Cluster {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "sks")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{DataDir: dir, Kubeconfig: filepath.Join(dir, "admin.kubeconfig"), Port: 6443, bin: bin, node: nn.Name, netns: nn}
	c.args = append([]string{"server", "--disable-agent", "--data-dir", dir, "--bind-address", nn.IP,
		"--node-ip", nn.IP, "--node-name", nn.Name}, extraArgs...)
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Logf("stopping server %s: %v", nn.Name, err)
		}
		if t.Failed() {
			t.Logf("server %s log:\n%s", nn.Name, tail(c.ServerLog(), 60))
		}
		removeDataDir(t, dir)
	})
	c.startBinary(t)
	return c
}

// ServerJoinString is the join string a server of a cluster of servers
// wrote to its <data-dir>/token, for further servers.
func (c *Cluster) ServerJoinString(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.DataDir, "token"))
	if err != nil {
		t.Fatalf("server join string: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// RunOnce runs the server's command line with extraArgs added, in its
// namespace, to its end (a run that exits by itself, such as
// --cluster-reset), and returns what it printed. The server must be
// stopped.
func (c *Cluster) RunOnce(extraArgs ...string) ([]byte, error) {
	args := append(append([]string(nil), c.args...), extraArgs...)
	if c.netns != nil {
		return c.netns.Command(c.bin, args...).CombinedOutput()
	}
	return exec.Command(c.bin, args...).CombinedOutput()
}
