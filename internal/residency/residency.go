// Package residency gives back to the kernel the memory that only a
// process's start-up needed.
//
// A start of skiff runs the init code of some 600 packages and builds its
// API tables once. Those functions and tables are spread over the whole
// binary, and the kernel maps the cached pages around each page it faults
// in (fault-around), so after a start nearly the whole executable is
// resident: most of an idle server's RSS is pages of the binary that no
// request will touch again. Release asks the kernel to reclaim them, as a
// kernel frees its __init sections after boot; the pages idle and later
// work need are faulted back in from the file when first touched.
package residency

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Usage is the process's resident memory, from /proc/self/status.
type Usage struct {
	// File is the resident file-backed memory (RssFile): mostly pages of
	// the executable.
	File int64
	// Anon is the resident anonymous memory (RssAnon): heap and stacks.
	Anon int64
}

// Total is the resident set size.
func (u Usage) Total() int64 { return u.File + u.Anon }

// Release reclaims the resident pages of the executable's read-only
// mappings (code and read-only data) and returns the free heap to the
// operating system. It is safe to call at any time: a read-only mapping's
// pages hold nothing but the file's content, so the next touch reads them
// back. It returns the usage before and after.
//
// The pages are paged out (MADV_PAGEOUT, Linux 5.4 and later), not merely
// unmapped: a page no other process maps leaves the page cache too, so the
// memory is free for the machine, not only off this process's account.
// On an older kernel, or where the process may not write the executable
// (the kernel then declines to page out its file pages), only the heap is
// returned and the error says why.
func Release() (before, after Usage, err error) {
	before, _ = ReadUsage()
	debug.FreeOSMemory()
	err = pageOutExecutable()
	after, _ = ReadUsage()
	if err == nil && after.File >= before.File && before.File > 0 {
		err = errors.New("the kernel paged out none of the executable's pages (the process may not be allowed to write the executable)")
	}
	return before, after, err
}

// ReleaseAfter waits until ready is closed (a nil ready: no wait), then
// for settle, the time the start-up work still running at readiness takes
// (the controllers' first syncs, the kubelet adopting its pods), then
// until the process is quiet (under quietShare of a CPU for quietWindow
// seconds, at most quietMaxWait: on a busy machine start-up work runs
// late, and what it touches after a release stays resident), and
// releases once. It returns when it has released or ctx ends first.
func ReleaseAfter(ctx context.Context, ready <-chan struct{}, settle time.Duration, log *slog.Logger) {
	if ready != nil {
		select {
		case <-ready:
		case <-ctx.Done():
			return
		}
	}
	t := time.NewTimer(settle)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return
	}
	if !waitQuiet(ctx, cpuTime) {
		return
	}
	before, after, err := Release()
	mib := func(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }
	if err != nil {
		log.Warn("start-up memory only partly released", "err", err,
			"rssFileMiB", mib(after.File), "rssAnonMiB", mib(after.Anon))
		return
	}
	log.Info("start-up memory released", "rssFileMiB", mib(before.File)+" -> "+mib(after.File),
		"rssAnonMiB", mib(before.Anon)+" -> "+mib(after.Anon))
}

// pageOutExecutable advises MADV_PAGEOUT, then MADV_RANDOM, on every
// mapping of the running executable that is not writable. Writable
// mappings (the data segments) are left alone.
func pageOutExecutable() error {
	var exe unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &exe); err != nil {
		return fmt.Errorf("executable: %w", err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return err
	}
	regions, err := readOnlyRegions(maps, unix.Major(exe.Dev), unix.Minor(exe.Dev), exe.Ino)
	if err != nil {
		return err
	}
	if len(regions) == 0 {
		return errors.New("no read-only mapping of the executable in /proc/self/maps")
	}
	for _, r := range regions {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_PAGEOUT); errno != 0 {
			return fmt.Errorf("madvise(MADV_PAGEOUT) %#x-%#x: %w", r.start, r.end, errno)
		}
		// From now on a fault reads the page it needs, not the 128 KiB
		// around it that the kernel's read-around would bring in and
		// fault-around then map: a server's idle work touches a few
		// functions in many places of the binary. Measured over 5 idle
		// minutes: RssFile 37.5 MiB against 41.2 without it; the first
		// request of a kind pays a few more reads (docs/benchmarks.md).
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_RANDOM); errno != 0 {
			return fmt.Errorf("madvise(MADV_RANDOM) %#x-%#x: %w", r.start, r.end, errno)
		}
	}
	return nil
}

type region struct{ start, end uintptr }

// readOnlyRegions parses /proc/<pid>/maps and returns the mappings of the
// file with the given device and inode whose permissions lack "w".
func readOnlyRegions(maps []byte, major, minor uint32, ino uint64) ([]region, error) {
	var out []region
	sc := bufio.NewScanner(bytes.NewReader(maps))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		// address perms offset dev inode [path]
		f := strings.Fields(sc.Text())
		if len(f) < 5 || strings.Contains(f[1], "w") {
			continue
		}
		if n, err := strconv.ParseUint(f[4], 10, 64); err != nil || n != ino {
			continue
		}
		maj, min, ok := strings.Cut(f[3], ":")
		if !ok || !hexEquals(maj, major) || !hexEquals(min, minor) {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			return nil, fmt.Errorf("maps line %q: no address range", sc.Text())
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			return nil, fmt.Errorf("maps line %q: bad address range", sc.Text())
		}
		out = append(out, region{uintptr(start), uintptr(end)})
	}
	return out, sc.Err()
}

func hexEquals(s string, v uint32) bool {
	n, err := strconv.ParseUint(s, 16, 32)
	return err == nil && uint32(n) == v
}

// ReadUsage reads the process's RssFile and RssAnon.
func ReadUsage() (Usage, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch key {
		case "RssFile":
			dst = &u.File
		case "RssAnon":
			dst = &u.Anon
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return Usage{}, fmt.Errorf("/proc/self/status %s: %w", key, err)
		}
		*dst = kb << 10
	}
	return u, sc.Err()
}

// The process is quiet when it used less than quietShare of one CPU over
// each of the last quietWindow seconds together; an idle server uses
// about 2 %.
const (
	quietWindow  = 5
	quietShare   = 0.05
	quietMaxWait = 2 * time.Minute
)

// waitQuiet samples the process's CPU time once a second until it is
// quiet or quietMaxWait has passed, and reports false if ctx ended first.
func waitQuiet(ctx context.Context, cpu func() time.Duration) bool {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	q := quietWatch{window: quietWindow, limit: time.Duration(quietShare * quietWindow * float64(time.Second))}
	deadline := time.Now().Add(quietMaxWait)
	for !q.observe(cpu()) && time.Now().Before(deadline) {
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// quietWatch is fed cumulative CPU times at a fixed interval and says
// whether the last window intervals used less than limit.
type quietWatch struct {
	window int
	limit  time.Duration
	times  []time.Duration
}

func (q *quietWatch) observe(cpu time.Duration) bool {
	q.times = append(q.times, cpu)
	if len(q.times) > q.window+1 {
		q.times = q.times[1:]
	}
	return len(q.times) == q.window+1 && q.times[q.window]-q.times[0] < q.limit
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
