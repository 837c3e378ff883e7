package cleanup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/skiff-io/skiff/internal/kubelet/containerd"
	"github.com/skiff-io/skiff/internal/server"
)

// Config is one data dir to clean up after.
type Config struct {
	// DataDir is the skiff server's or agent's --data-dir.
	DataDir string
	// DefaultDataDir is the data dir of a skiff process started without
	// --data-dir ("/var/lib/skiff").
	DefaultDataDir string
	// Bridge is the pod bridge when the data dir's CNI config does not name
	// one; without either, no bridge is deleted.
	Bridge string
	// Grace is how long skiff processes and containers get between SIGTERM
	// and SIGKILL (default 10s for containers; skiff processes get
	// ProcessGrace).
	Grace, ProcessGrace time.Duration
	// Out receives one line per thing stopped or removed.
	Out io.Writer
}

func (c *Config) defaults() error {
	if c.DataDir == "" {
		return errors.New("a data dir is required")
	}
	dir, err := filepath.Abs(c.DataDir)
	if err != nil {
		return err
	}
	c.DataDir = filepath.Clean(dir)
	if c.DefaultDataDir == "" {
		c.DefaultDataDir = server.Defaults().DataDir
	}
	if c.Grace <= 0 {
		c.Grace = 10 * time.Second
	}
	if c.ProcessGrace <= 0 {
		c.ProcessGrace = 90 * time.Second
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	return nil
}

// KillAll stops the skiff node of cfg.DataDir and everything it runs, and
// removes what it made on the host outside its files (see the package
// doc). It keeps going after an error and returns them all, joined.
func KillAll(ctx context.Context, cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	reported := 0
	report := func(format string, args ...any) {
		reported++
		fmt.Fprintf(cfg.Out, format+"\n", args...)
	}
	defer func() {
		if reported == 0 {
			fmt.Fprintf(cfg.Out, "nothing to do for %s\n", cfg.DataDir)
		}
	}()
	dir := cfg.DataDir
	// The same dir may be named through a symlink (/tmp on some systems):
	// compare command lines against both spellings, mounts against the
	// real one.
	realDir := dir
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		realDir = r
	}
	sameDir := func(d string) bool {
		if d == dir || d == realDir {
			return true
		}
		r, err := filepath.EvalSymlinks(d)
		return err == nil && r == realDir
	}
	layout := containerd.Layout{Dir: filepath.Join(dir, "agent", "containerd")}
	socket := layout.Socket()
	var errs []error

	// 1. The skiff processes of the data dir: those whose command line
	// names it, and whoever holds its lock.
	procs, err := listProcesses("/proc")
	if err != nil {
		return fmt.Errorf("listing processes: %w", err)
	}
	var nodes []int
	roles := map[int]string{}
	var others []string // data dirs of the other skiff nodes on this machine
	for _, p := range procs {
		if p.PID == os.Getpid() {
			continue
		}
		role, d, ok := skiffNode(p, cfg.DefaultDataDir)
		if !ok {
			continue
		}
		if sameDir(d) {
			nodes, roles[p.PID] = append(nodes, p.PID), role
		} else {
			others = append(others, d)
		}
	}
	var lock *server.DataDirLock
	if _, err := os.Stat(dir); err == nil {
		lock, err = server.LockDataDir(dir)
		var inUse *server.DataDirInUseError
		if errors.As(err, &inUse) && inUse.PID > 0 && roles[inUse.PID] == "" {
			nodes, roles[inUse.PID] = append(nodes, inUse.PID), "process holding the data dir lock"
		}
	}
	if len(nodes) > 0 {
		left := terminate(nodes, cfg.ProcessGrace)
		for _, pid := range nodes {
			if !contains(left, pid) {
				report("stopped skiff %s (pid %d)", roles[pid], pid)
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("skiff processes %v did not exit", left)
		}
	}
	// Hold the lock from now on: a skiff started meanwhile would fail
	// at once rather than run on a half-cleaned node.
	if lock == nil {
		if _, err := os.Stat(dir); err == nil {
			if lock, err = server.LockDataDir(dir); err != nil {
				return fmt.Errorf("after stopping skiff: %w", err)
			}
		}
	}
	defer lock.Release()

	// 2. The pods, through skiff's containerd: the one running, or one
	// started for the purpose when pods outlived it (the common case: a
	// cleanly stopped skiff stops its containerd but not its pods).
	procs, _ = listProcesses("/proc")
	shims := map[int]bool{}
	for _, p := range procs {
		if _, _, ok := isShimOf(p, socket); ok {
			shims[p.PID] = true
		}
	}
	// Network namespaces of the pods, to find their names under
	// /var/run/netns once the pods are gone; never the host's.
	podNetns := map[uint64]bool{}
	hostNetns, _ := netnsInode("/proc/self/ns/net")
	for _, pid := range descendants(procs, shims) {
		if ino, ok := netnsInode("/proc/" + strconv.Itoa(pid) + "/ns/net"); ok && ino != hostNetns {
			podNetns[ino] = true
		}
	}
	rs, closeRS, err := dialCRI(ctx, socket, 2*time.Second)
	var stopTemp func()
	if err != nil && len(shims) > 0 {
		if _, statErr := os.Stat(layout.Config()); statErr == nil {
			_ = os.Remove(socket) // stale: nothing answered on it
			pid, stop, startErr := startContainerd(layout.Config(), layout.Log())
			if startErr != nil {
				errs = append(errs, startErr)
			} else {
				stopTemp = stop
				report("started skiff's containerd (pid %d) to stop its pods", pid)
				rs, closeRS, err = dialCRI(ctx, socket, 30*time.Second)
				if err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if rs != nil {
		if err := stopPods(ctx, rs, cfg.Grace, report); err != nil {
			errs = append(errs, err)
		}
		closeRS()
	}
	if stopTemp != nil {
		stopTemp()
		report("stopped skiff's containerd")
	}

	// 3. skiff's containerd, then whatever its containers and shims left.
	procs, _ = listProcesses("/proc")
	var ctrd []int
	for _, p := range procs {
		if isContainerdOf(p, layout.Config()) {
			ctrd = append(ctrd, p.PID)
		}
	}
	if len(ctrd) > 0 {
		left := terminate(ctrd, 10*time.Second)
		for _, pid := range ctrd {
			if !contains(left, pid) {
				report("stopped skiff's containerd (pid %d)", pid)
			}
		}
	}
	_ = os.Remove(layout.PIDFile())
	if err := killRunc(layout.RuncRoot(), report); err != nil {
		errs = append(errs, err)
	}
	procs, _ = listProcesses("/proc")
	for _, p := range procs {
		ns, id, ok := isShimOf(p, socket)
		if !ok {
			continue
		}
		if left := kill([]int{p.PID}); len(left) > 0 {
			errs = append(errs, fmt.Errorf("shim %d did not exit", p.PID))
			continue
		}
		report("killed containerd shim (pid %d, id %s)", p.PID, short(id))
		if err := removeSocket(shimSocket(socket, ns, id), report); err != nil {
			errs = append(errs, err)
		}
	}
	if fi, err := os.Lstat(socket); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if err := os.Remove(socket); err == nil {
			report("removed containerd socket %s", socket)
		}
	}

	// 4. Mounts below the data dir (pod volumes, secrets' tmpfs, shm,
	// rootfs overlays, netns bind mounts), and named netns elsewhere.
	if err := unmountAll(realDir, report); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []string{"/var/run/netns", "/run/netns"} {
		if err := removeNetns(d, podNetns, report); err != nil {
			errs = append(errs, err)
		}
	}

	// 5. The pod network: veths left on the bridge, the bridge.
	// The bridge is the one the data dir's CNI config names: a node that
	// never wrote one made none.
	bridge, err := layout.Bridge()
	if err != nil || bridge == "" {
		bridge = cfg.Bridge
	}
	// Nodes on one machine need bridges of their own; should another
	// running node have the same one all the same, it keeps it.
	if bridge == "" {
		// Nothing to delete.
	} else if other := bridgeUser(others, bridge); other != "" {
		report("kept bridge %s: the skiff node of %s uses it too", bridge, other)
	} else {
		for _, port := range bridgePorts("/sys/class/net", bridge) {
			if err := deleteLink(port, "veth", report); err != nil {
				errs = append(errs, err)
			}
		}
		if err := deleteLink(bridge, "bridge", report); err != nil {
			errs = append(errs, err)
		}
	}

	// 6. What is one per network namespace, shared by the nodes in it:
	// the node-local DNS address, the service proxy's table, the pod
	// network's routes, VXLAN device and masquerade table. Another skiff
	// node still running here may be using them: leave them to it.
	if _, err := os.Stat(dir); err != nil {
		// No data dir, no node: what a node serves is not traceable to it.
	} else if err := deleteShared(others, report); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killRunc kills and deletes the containers runc still knows under root,
// reporting each: what is left when containerd could not stop them.
func killRunc(root string, report func(string, ...any)) error {
	if _, err := os.Stat(root); err != nil {
		return nil
	}
	out, err := exec.Command(containerd.RuncBinary, "--root", root, "list", "-q").Output()
	if err != nil {
		return fmt.Errorf("runc list: %w", err)
	}
	var errs []error
	for _, id := range strings.Fields(string(out)) {
		if out, err := exec.Command(containerd.RuncBinary, "--root", root, "delete", "--force", id).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("runc delete %s: %w: %s", id, err, strings.TrimSpace(string(out))))
			continue
		}
		report("killed container %s (runc)", short(id))
	}
	return errors.Join(errs...)
}

// bridgeUser is the first of dataDirs whose node's CNI config names
// bridge, or "".
func bridgeUser(dataDirs []string, bridge string) string {
	for _, d := range dataDirs {
		b, err := containerd.Layout{Dir: filepath.Join(d, "agent", "containerd")}.Bridge()
		if err == nil && b == bridge {
			return d
		}
	}
	return ""
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
