package image

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestPauseBinaryIsELF(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		if _, err := PauseBinary(); err == nil {
			t.Fatalf("PauseBinary on %s succeeded, want an error", runtime.GOARCH)
		}
		t.Skipf("the pause program exists for amd64 only, this is %s", runtime.GOARCH)
	}
	bin, err := PauseBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(bin) > 512 {
		t.Errorf("pause is %d bytes, want a tiny program", len(bin))
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("debug/elf: %v", err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		t.Errorf("class %v machine %v type %v", f.Class, f.Machine, f.Type)
	}
	if len(f.Progs) != 1 || f.Progs[0].Type != elf.PT_LOAD || f.Progs[0].Filesz != uint64(len(bin)) {
		t.Fatalf("program headers %+v", f.Progs)
	}
	if p := f.Progs[0]; f.Entry < p.Vaddr || f.Entry >= p.Vaddr+p.Memsz {
		t.Errorf("entry %#x outside the loaded segment", f.Entry)
	}
}

// TestPauseRuns executes the pause program: it stays alive, exits 0 on
// SIGTERM and dies on SIGKILL.
func TestPauseRuns(t *testing.T) {
	path := writePause(t)
	tests := []struct {
		name     string
		signal   syscall.Signal
		wantCode int // -1: killed by the signal
	}{
		{"SIGTERM exits 0", syscall.SIGTERM, 0},
		{"SIGINT exits 0", syscall.SIGINT, 0},
		{"SIGKILL kills", syscall.SIGKILL, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(path)
			if err := cmd.Start(); err != nil {
				t.Fatalf("exec pause: %v", err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				t.Fatalf("pause exited early: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
			if err := cmd.Process.Signal(tt.signal); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("pause did not exit on %v", tt.signal)
			}
			if got := cmd.ProcessState.ExitCode(); got != tt.wantCode {
				t.Errorf("exit code %d, want %d (%v)", got, tt.wantCode, cmd.ProcessState)
			}
		})
	}
}

// TestPauseIgnoresSIGCHLD checks that the pause program ignores SIGCHLD,
// so that the kernel reaps the children it inherits as a pod's PID 1.
func TestPauseIgnoresSIGCHLD(t *testing.T) {
	path := writePause(t)
	cmd := exec.Command(path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	status := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "status")
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(status)
		if err != nil {
			t.Fatal(err)
		}
		// SigIgn is a hex mask; SIGCHLD (17) is bit 16: 0x10000. Other bits
		// may be set too: ignored signals are inherited from the test's
		// parent (make ignores SIGPIPE, for one).
		if ignoresSIGCHLD(b) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pause does not ignore SIGCHLD:\n%s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ignoresSIGCHLD reads the SigIgn mask of a /proc/<pid>/status.
func ignoresSIGCHLD(status []byte) bool {
	for _, line := range bytes.Split(status, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("SigIgn:")); ok {
			mask, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64)
			return err == nil && mask&(1<<16) != 0
		}
	}
	return false
}

// writePause writes the pause program to a temp file and returns its path;
// it skips where the program cannot run.
func writePause(t *testing.T) string {
	t.Helper()
	if runtime.GOARCH != "amd64" || runtime.GOOS != "linux" {
		t.Skipf("the pause program runs on linux/amd64 only, this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	bin, err := PauseBinary()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pause")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}
