package cleanup

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is one entry of /proc.
type process struct {
	PID, PPID int
	Argv      []string
	// Cwd resolves relative paths on the command line ("" when unknown).
	Cwd string
}

// listProcesses reads every process of procRoot ("/proc"). Processes that
// exit while being read, and kernel threads (no command line), are left
// out.
func listProcesses(procRoot string) ([]process, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, err
	}
	var out []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		dir := filepath.Join(procRoot, e.Name())
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		p := process{PID: pid, Argv: strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")}
		if stat, err := os.ReadFile(filepath.Join(dir, "stat")); err == nil {
			p.PPID, _ = parseStatPPID(stat)
		}
		p.Cwd, _ = os.Readlink(filepath.Join(dir, "cwd"))
		out = append(out, p)
	}
	return out, nil
}

// parseStatPPID returns the parent pid from /proc/<pid>/stat, "pid (comm)
// state ppid ...": comm may hold spaces and parentheses, so the fields
// are counted from the last ')'.
func parseStatPPID(stat []byte) (int, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

// skiffNode reports whether p is `skiff server` or `skiff agent` and, if
// so, its data dir: the --data-dir flag's value made absolute against the
// process's working directory, or defaultDir without the flag. Any
// executable whose name begins with "skiff" counts (a build in a temp dir,
// `go run`'s).
func skiffNode(p process, defaultDir string) (role, dataDir string, ok bool) {
	if len(p.Argv) < 2 || !strings.HasPrefix(filepath.Base(p.Argv[0]), "skiff") {
		return "", "", false
	}
	args := p.Argv[1:]
	// The subcommand is the first argument that is not a flag: the root
	// command's only persistent flag (-v) takes no value.
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		i++
	}
	if i == len(args) || (args[i] != "server" && args[i] != "agent") {
		return "", "", false
	}
	role, dataDir = args[i], defaultDir
	for j := i + 1; j < len(args); j++ {
		a := args[j]
		if a == "--" {
			break
		}
		if v, ok := strings.CutPrefix(a, "--data-dir="); ok {
			dataDir = v
		} else if a == "--data-dir" && j+1 < len(args) {
			dataDir = args[j+1]
			j++
		}
	}
	if !filepath.IsAbs(dataDir) {
		if p.Cwd == "" {
			return "", "", false
		}
		dataDir = filepath.Join(p.Cwd, dataDir)
	}
	return role, filepath.Clean(dataDir), true
}

// hasFlagValue reports whether argv sets flag (as "-flag v", "--flag v",
// "-flag=v" or "--flag=v") to value.
func hasFlagValue(argv []string, flag, value string) bool {
	for i, a := range argv {
		name, v, eq := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != flag {
			continue
		}
		if eq && v == value || !eq && i+1 < len(argv) && argv[i+1] == value {
			return true
		}
	}
	return false
}

// isShimOf reports whether p is a containerd shim of the containerd
// serving socket, and the namespace and id it was started with.
func isShimOf(p process, socket string) (ns, id string, ok bool) {
	if len(p.Argv) == 0 || !strings.HasPrefix(filepath.Base(p.Argv[0]), "containerd-shim") {
		return "", "", false
	}
	if !hasFlagValue(p.Argv, "address", socket) {
		return "", "", false
	}
	return flagValue(p.Argv, "namespace"), flagValue(p.Argv, "id"), true
}

// flagValue is the value argv gives flag ("" when none).
func flagValue(argv []string, flag string) string {
	for i, a := range argv {
		name, v, eq := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != flag {
			continue
		}
		if eq {
			return v
		}
		if i+1 < len(argv) {
			return argv[i+1]
		}
	}
	return ""
}

// isContainerdOf reports whether p is a containerd running with config.
func isContainerdOf(p process, config string) bool {
	return len(p.Argv) > 0 && filepath.Base(p.Argv[0]) == "containerd" &&
		(hasFlagValue(p.Argv, "config", config) || hasFlagValue(p.Argv, "c", config))
}

// descendants returns the pids below the roots in procs' parent tree.
func descendants(procs []process, roots map[int]bool) []int {
	children := map[int][]int{}
	for _, p := range procs {
		children[p.PPID] = append(children[p.PPID], p.PID)
	}
	var out []int
	queue := make([]int, 0, len(roots))
	for r := range roots {
		queue = append(queue, r)
	}
	seen := map[int]bool{}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || !bytes.HasPrefix(bytes.TrimSpace(stat[i+1:]), []byte("Z"))
}

// terminate sends SIGTERM to pids, waits up to grace for them to exit,
// then SIGKILLs the rest and waits up to killWait more. It returns the
// pids that were still alive after all that.
func terminate(pids []int, grace time.Duration) []int {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	if rest := waitGone(pids, grace); len(rest) > 0 {
		for _, pid := range rest {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		return waitGone(rest, killWait)
	}
	return nil
}

// kill SIGKILLs pids and waits for them to be gone.
func kill(pids []int) []int {
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
			continue
		}
	}
	return waitGone(pids, killWait)
}

// killWait bounds the wait for a SIGKILLed process to be gone.
const killWait = 5 * time.Second

// waitGone polls until none of pids is alive or timeout passes, and
// returns those still alive.
func waitGone(pids []int, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		var rest []int
		for _, pid := range pids {
			if alive(pid) {
				rest = append(rest, pid)
			}
		}
		if len(rest) == 0 || time.Now().After(deadline) {
			return rest
		}
		time.Sleep(50 * time.Millisecond)
	}
}
