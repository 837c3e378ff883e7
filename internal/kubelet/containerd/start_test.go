package containerd

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStartClearsLeftovers starts a Process on a Dir where an earlier run
// left something behind: a stale socket file, an orphaned containerd
// recorded in the pid file (taken over), or a foreign server on the socket
// (refused).
func TestStartClearsLeftovers(t *testing.T) {
	requireRuntime(t)
	tests := []struct {
		name    string
		leave   func(t *testing.T, p *Process) (orphan *exec.Cmd)
		wantErr string
	}{
		{
			name: "stale socket file",
			leave: func(t *testing.T, p *Process) *exec.Cmd {
				l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p.Socket(), Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				l.SetUnlinkOnClose(false)
				l.Close()
				return nil
			},
		},
		{
			name: "orphaned containerd",
			leave: func(t *testing.T, p *Process) *exec.Cmd {
				cmd := exec.Command(p.cfg.Binary, "--config", filepath.Join(p.cfg.Dir, configFile))
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
				if err := os.WriteFile(filepath.Join(p.cfg.Dir, pidFile), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "orphan serving", 30*time.Second, func() error {
					c, err := net.Dial("unix", p.Socket())
					if err == nil {
						c.Close()
					}
					return err
				})
				return cmd
			},
		},
		{
			name: "foreign server",
			leave: func(t *testing.T, p *Process) *exec.Cmd {
				l, err := net.Listen("unix", p.Socket())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
				return nil
			},
			wantErr: "another process serves",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, err := os.MkdirTemp("/tmp", "ctd")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cleanupHost(t, dir, "skt-none") })
			p, err := New(Config{Dir: dir, Log: slog.New(slog.NewTextHandler(t.Output(), nil))})
			if err != nil {
				t.Fatal(err)
			}
			orphan := tt.leave(t, p)
			var orphanExited chan error
			if orphan != nil {
				orphanExited = make(chan error, 1)
				go func() { orphanExited <- orphan.Wait() }()
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- p.Start(ctx) }()
			t.Cleanup(func() { cancel(); <-done })
			if tt.wantErr != "" {
				select {
				case err := <-done:
					done <- err
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("Start() = %v, want an error containing %q", err, tt.wantErr)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("Start did not refuse")
				}
				return
			}
			select {
			case <-p.Ready():
			case err := <-done:
				done <- err
				t.Fatalf("Start returned: %v", err)
			case <-time.After(60 * time.Second):
				t.Fatal("not ready after 60s")
			}
			if orphan != nil {
				select {
				case <-orphanExited:
				case <-time.After(time.Second):
					t.Error("the orphaned containerd still runs")
				}
				if p.PID() == orphan.Process.Pid {
					t.Error("Process adopted the orphan's pid")
				}
			}
		})
	}
}
