package volume

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// mountInfoPath is read to learn what is mounted; a variable for tests.
var mountInfoPath = "/proc/self/mountinfo"

// mountTmpfs mounts a tmpfs on dir; sizeBytes > 0 caps it (size=).
func mountTmpfs(dir string, sizeBytes int64) error {
	opts := ""
	if sizeBytes > 0 {
		opts = "size=" + strconv.FormatInt(sizeBytes, 10)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s (%s): %w", dir, opts, err)
	}
	return nil
}

// unmount unmounts dir, lazily when it is busy so that a container that
// still holds it cannot keep the pod's directory forever.
func unmount(dir string) error {
	err := syscall.Unmount(dir, 0)
	if errors.Is(err, syscall.EBUSY) {
		err = syscall.Unmount(dir, syscall.MNT_DETACH)
	}
	if err != nil && !errors.Is(err, syscall.EINVAL) { // EINVAL: not a mount point
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// mountPointsUnder lists the mount points at or below dir (symlinks in dir
// resolved), deepest first so they can be unmounted in that order.
func mountPointsUnder(dir string) ([]string, error) {
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", dir, err)
	}
	f, err := os.Open(mountInfoPath)
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := UnescapeMountInfo(fields[4])
		if mp == resolved || strings.HasPrefix(mp, resolved+"/") {
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// isMountPoint reports whether something is mounted exactly on dir.
func isMountPoint(dir string) (bool, error) {
	mps, err := mountPointsUnder(dir)
	if err != nil {
		return false, err
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false, fmt.Errorf("resolve %s: %w", dir, err)
	}
	for _, mp := range mps {
		if mp == resolved {
			return true, nil
		}
	}
	return false, nil
}

// UnescapeMountInfo undoes the octal escapes of a path in
// /proc/*/mountinfo (\040 space, \011 tab, \012 newline, \134 backslash).
func UnescapeMountInfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
