package framework

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Sim is a running `skiff sim` process: simulated nodes that register,
// heartbeat and "run" the pods bound to them.
type Sim struct {
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

// StartSim runs `skiff sim --kubeconfig <cluster's> args...` and stops it
// in t.Cleanup. Its log goes to sim-<name>.log in the cluster's data dir.
func StartSim(t testing.TB, bin string, c *Cluster, name string, args ...string) *Sim {
	t.Helper()
	logPath := filepath.Join(c.DataDir, "sim-"+name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"sim", "--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting skiff sim: %v", err)
	}
	s := &Sim{cmd: cmd, exited: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); logf.Close(); close(s.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-s.exited
		}
	})
	return s
}

// Kill9 kills the sim with SIGKILL: its nodes stop heartbeating at once,
// as machines that lose power do.
func (s *Sim) Kill9() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// Log returns what the sim printed.
func (s *Sim) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}
