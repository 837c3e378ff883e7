package server

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// nodeRateKey is the node's entry in the CPU rate cache.
const nodeRateKey = "node"

// userHZ is the unit of /proc/stat CPU times; it is 100 on every Linux
// architecture Go supports.
const userHZ = 100

// nodeStats reads the node's CPU and memory from /proc. A part that cannot
// be read is left out rather than failing the whole summary.
func (s *Server) nodeStats() NodeStats {
	ns := NodeStats{NodeName: s.nodeName}
	now := time.Now()
	if st, err := readProcStat(filepath.Join(s.procRoot, "stat")); err != nil {
		s.log.Debug("read node cpu", "err", err)
	} else {
		ns.StartTime = metav1.NewTime(st.boot)
		ns.CPU = &CPUStats{Time: metav1.NewTime(now), UsageCoreNanoSeconds: ptr(st.busy)}
		ns.CPU.UsageNanoCores = s.rates.rate(nodeRateKey, now, st.busy)
	}
	if mem, err := readMeminfo(filepath.Join(s.procRoot, "meminfo")); err != nil {
		s.log.Debug("read node memory", "err", err)
	} else {
		// As upstream's root-cgroup figures: usage is what is not free, the
		// working set leaves out inactive page cache, and available is what
		// the working set leaves of the total.
		usage := sub(mem["MemTotal"], mem["MemFree"])
		ws := sub(usage, mem["Inactive(file)"])
		ns.Memory = &MemoryStats{
			Time:            metav1.NewTime(now),
			AvailableBytes:  ptr(sub(mem["MemTotal"], ws)),
			UsageBytes:      ptr(usage),
			WorkingSetBytes: ptr(ws),
		}
	}
	return ns
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// procStat is what the server reads from /proc/stat.
type procStat struct {
	busy uint64    // CPU time the node has spent busy, in nanoseconds
	boot time.Time // boot time
	cpus int       // online logical CPUs (the cpuN lines)
}

// readProcStat reads /proc/stat at path.
func readProcStat(path string) (procStat, error) {
	var st procStat
	data, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	found := false
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch name := fields[0]; {
		case name == "cpu":
			// user nice system idle iowait irq softirq steal ...: busy is
			// all but idle and iowait.
			if len(fields) < 9 {
				return st, fmt.Errorf("%s: short cpu line %q", path, line)
			}
			var ticks uint64
			for i, f := range fields[1:9] {
				if i == 3 || i == 4 {
					continue
				}
				v, err := strconv.ParseUint(f, 10, 64)
				if err != nil {
					return st, fmt.Errorf("%s: cpu field %d: %w", path, i+1, err)
				}
				ticks += v
			}
			st.busy = ticks * uint64(time.Second/userHZ)
			found = true
		case strings.HasPrefix(name, "cpu"):
			if _, err := strconv.Atoi(name[len("cpu"):]); err == nil {
				st.cpus++
			}
		case name == "btime":
			if len(fields) == 2 {
				if v, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
					st.boot = time.Unix(v, 0)
				}
			}
		}
	}
	if !found {
		return st, fmt.Errorf("%s: no cpu line", path)
	}
	return st, nil
}

// readMeminfo returns /proc/meminfo's values in bytes.
func readMeminfo(path string) (map[string]uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			continue
		}
		if len(fields) > 1 && fields[1] == "kB" {
			v *= 1024
		}
		out[name] = v
	}
	if _, ok := out["MemTotal"]; !ok {
		return nil, fmt.Errorf("%s: no MemTotal", path)
	}
	return out, nil
}
