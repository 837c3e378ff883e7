package server

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// LockFileName is the file in a data dir that a running skiff process
// holds an exclusive lock on, with its pid written in it.
const LockFileName = "skiff.lock"

// DataDirInUseError is LockDataDir's error when another process holds
// the lock. PID is the holder's (0 when it did not say).
type DataDirInUseError struct {
	Dir string
	PID int
}

func (e *DataDirInUseError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("data dir %s is in use by pid %d", e.Dir, e.PID)
	}
	return fmt.Sprintf("data dir %s is in use by another process", e.Dir)
}

// DataDirLock is a held data dir lock. The kernel releases it when its
// file is closed: by Release, at exit, and on kill -9 too, so a lock file
// left by a killed process does not block the next start.
type DataDirLock struct {
	f *os.File
}

// LockDataDir takes the lock of dir (created if missing) without waiting:
// a data dir holds the state of one skiff process (`skiff server` or
// `skiff agent`), and a second one must say so at once rather than hang on
// etcd's or containerd's own locks. It fails with a *DataDirInUseError,
// naming the holder's pid, when another process holds it.
//
// The lock is flock(2) on <dir>/skiff.lock. Go opens files close-on-exec,
// so the processes skiff starts (containerd) do not inherit it and cannot
// keep it after skiff is gone.
func LockDataDir(dir string) (*DataDirLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir lock: %w", err)
	}
	if err := flock(f); err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &DataDirInUseError{Dir: dir, PID: holderPID(path)}
		}
		return nil, fmt.Errorf("data dir lock %s: %w", path, err)
	}
	// The pid a previous holder left is stale: replace it.
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt(pid, 0)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("data dir lock %s: %w", path, err)
	}
	return &DataDirLock{f: f}, nil
}

// Release gives the lock up. The lock file stays: removing it would let a
// process that opened it just before lock a file no longer in the dir.
func (l *DataDirLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// flock takes an exclusive flock on f without blocking, retrying when a
// signal interrupts the call.
func flock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// holderPID reads the pid the lock's holder wrote. A holder that has just
// taken the lock may not have written it yet: look again for a moment.
func holderPID(path string) int {
	for range 20 {
		b, err := os.ReadFile(path)
		if err == nil {
			if pid, err := strconv.Atoi(string(bytes.TrimSpace(b))); err == nil && pid > 0 {
				return pid
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return 0
}
