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
	if cpu, boot, err := readProcStat(filepath.Join(s.procRoot, "stat")); err != nil {
		s.log.Debug("read node cpu", "err", err)
	} else {
		ns.StartTime = metav1.NewTime(boot)
		ns.CPU = &CPUStats{Time: metav1.NewTime(now), UsageCoreNanoSeconds: ptr(cpu)}
		ns.CPU.UsageNanoCores = s.rates.rate(nodeRateKey, now, cpu)
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

// readProcStat returns the CPU time the node has spent busy, in
// nanoseconds, and its boot time.
func readProcStat(path string) (busy uint64, boot time.Time, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, boot, err
	}
	found := false
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "cpu":
			// user nice system idle iowait irq softirq steal ...: busy is
			// all but idle and iowait.
			if len(fields) < 9 {
				return 0, boot, fmt.Errorf("%s: short cpu line %q", path, line)
			}
			var ticks uint64
			for i, f := range fields[1:9] {
				if i == 3 || i == 4 {
					continue
				}
				v, err := strconv.ParseUint(f, 10, 64)
				if err != nil {
					return 0, boot, fmt.Errorf("%s: cpu field %d: %w", path, i+1, err)
				}
				ticks += v
			}
			busy = ticks * uint64(time.Second/userHZ)
			found = true
		case "btime":
			if len(fields) == 2 {
				if v, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
					boot = time.Unix(v, 0)
				}
			}
		}
	}
	if !found {
		return 0, boot, fmt.Errorf("%s: no cpu line", path)
	}
	return busy, boot, nil
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
