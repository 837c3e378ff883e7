package server

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestLockDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	l, err := LockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, LockFileName))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(os.Getpid()) {
		t.Fatalf("lock file holds %q, want this pid %d", got, os.Getpid())
	}

	// flock conflicts between two opens even in one process.
	_, err = LockDataDir(dir)
	var inUse *DataDirInUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("second lock: %v, want a DataDirInUseError", err)
	}
	want := "data dir " + dir + " is in use by pid " + strconv.Itoa(os.Getpid())
	if err.Error() != want {
		t.Fatalf("second lock: %q, want %q", err, want)
	}

	// A process started while the lock is held does not inherit it.
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })

	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := LockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release, with a child of the first holder alive: %v", err)
	}
	defer l2.Release()
}

// A lock file left by a process that is gone (its pid in it, no lock
// held) does not block.
func TestLockDataDirStaleFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, LockFileName), []byte("999999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := LockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	b, _ := os.ReadFile(filepath.Join(dir, LockFileName))
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(os.Getpid()) {
		t.Fatalf("lock file holds %q, want this pid", got)
	}
}
