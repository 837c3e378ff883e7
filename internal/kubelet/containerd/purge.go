package containerd

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/skiff-io/skiff/internal/image"
	"github.com/skiff-io/skiff/internal/kubelet/volume"
)

// Purge removes everything a containerd of dir left on the host: its runc
// containers, its shims, the mounts under dir, the bridge (when not ""),
// and dir itself. It is for tests and for uninstalling a node; containerd
// itself must have stopped. It returns the errors it met, joined, after
// trying everything.
func Purge(dir, bridge string) error {
	var errs []error
	runcRoot := filepath.Join(dir, runcRootDir, image.Namespace)
	if out, err := exec.Command(runcBinary, "--root", runcRoot, "list", "-q").Output(); err == nil {
		for _, id := range strings.Fields(string(out)) {
			if out, err := exec.Command(runcBinary, "--root", runcRoot, "delete", "--force", id).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("runc delete %s: %w: %s", id, err, out))
			}
		}
	}
	// Shims of this containerd name its socket on their command line.
	sock := []byte("\x00" + filepath.Join(dir, socketFile) + "\x00")
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, c := range procs {
		b, err := os.ReadFile(c)
		if err == nil && strings.Contains(string(b), "containerd-shim") && strings.Contains(string(b), string(sock)) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(c)))
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, m := range mountsUnder(dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	if _, err := os.Stat("/sys/class/net/" + bridge); bridge != "" && err == nil {
		if out, err := exec.Command("ip", "link", "del", bridge).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip link del %s: %w: %s", bridge, err, out))
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// mountsUnder returns the mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := volume.UnescapeMountInfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}
