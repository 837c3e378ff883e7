package cleanup

import (
	"bufio"
	"errors"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/skiff-io/skiff/internal/kubelet/volume"
)

// mountsUnder returns the mount points strictly below dir listed in a
// mountinfo file (proc(5)), deepest first, so that unmounting them in
// order never finds a mount busy with another mounted below it. dir
// itself is left out: it may be a disk the admin mounted for skiff's data.
// A point mounted several times (stacked) is listed as often.
func mountsUnder(r io.Reader, dir string) ([]string, error) {
	dir = strings.TrimSuffix(dir, "/")
	var out []string
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		// id parent major:minor root mountpoint options ...
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := volume.UnescapeMountInfo(fields[4])
		if strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool {
		di, dj := strings.Count(out[i], "/"), strings.Count(out[j], "/")
		if di != dj {
			return di > dj
		}
		return out[i] > out[j]
	})
	return out, nil
}

// readMountsUnder is mountsUnder of this process's mount namespace.
func readMountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return mountsUnder(f, dir)
}

// unmountAll unmounts every mount below dir, deepest first, reporting
// each one. A mount still busy is detached (MNT_DETACH): it disappears
// from the tree now and is freed when its last user goes. Passes repeat
// while they make progress, for stacked mounts and mounts that
// propagation brought back.
func unmountAll(dir string, report func(string, ...any)) error {
	var errs []error
	for pass := 0; pass < 5; pass++ {
		mounts, err := readMountsUnder(dir)
		if err != nil {
			return err
		}
		if len(mounts) == 0 {
			return nil
		}
		errs = nil
		progress := false
		for _, m := range mounts {
			err := unix.Unmount(m, 0)
			if errors.Is(err, unix.EBUSY) {
				err = unix.Unmount(m, unix.MNT_DETACH)
			}
			switch {
			case err == nil:
				progress = true
				report("unmounted %s", m)
			case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
				// Gone with its parent, or a stacked entry already undone.
			default:
				errs = append(errs, &os.PathError{Op: "unmount", Path: m, Err: err})
			}
		}
		if !progress {
			break
		}
	}
	return errors.Join(errs...)
}

// mountedAt reports whether the mountinfo in r lists a mount at dir.
func mountedAt(r io.Reader, dir string) (bool, error) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 5 && volume.UnescapeMountInfo(fields[4]) == dir {
			return true, nil
		}
	}
	return false, s.Err()
}
