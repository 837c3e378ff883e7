package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-io/skiff/test/framework"
)

// BenchmarkAgentJoin measures how long `skiff agent` takes from its start
// to its node Ready, joining a server in another network namespace with a
// join string (TLS bootstrap included, no image to import but the pause
// image it builds), and the memory of the last agent and its containerd
// after a minute idle (no pod but the node's own work: lease, status,
// proxy, DNS, pod network):
//
//	go test -run '^$' -bench AgentJoin -benchtime 5x ./test/e2e/
func BenchmarkAgentJoin(b *testing.B) {
	if why := framework.CanRunContainers(); why != "" {
		b.Skipf("skipping: %s", why)
	}
	images := b.TempDir()
	network := framework.NewNetwork(b, "skbn0", "10.199.71.0/24")
	c := framework.StartNodeIn(b, skiffBin, images, network.AddNode(b, "skbn-server"))
	join := newJoinString(b, c)
	var last *framework.Agent
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		nn := network.AddNode(b, fmt.Sprintf("skbn-a%d", i))
		last = framework.StartAgentIn(b, skiffBin, c, nn, join, images)
	}
	b.StopTimer()
	time.Sleep(time.Minute)
	agentRSS := rssMiB(b, last.Pid())
	pid, err := os.ReadFile(filepath.Join(last.DataDir, "agent", "containerd", "containerd.pid"))
	if err != nil {
		b.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
	ctdRSS := rssMiB(b, n)
	b.ReportMetric(agentRSS, "agent-MiB")
	b.ReportMetric(ctdRSS, "containerd-MiB")
	b.ReportMetric(agentRSS+ctdRSS, "node-MiB")
}

// rssMiB is a process's resident set size in MiB.
func rssMiB(b *testing.B, pid int) float64 {
	b.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatalf("no VmRSS for pid %d", pid)
	return 0
}
