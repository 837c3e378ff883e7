package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"
)

// The CRI log format containerd writes, one message or message fragment a
// line:
//
//	2016-10-06T00:17:09.669794202Z stdout P first half of a long line
//	2016-10-06T00:17:09.669794203Z stdout F second half, and the newline
//
// A full ("F") line's own newline ends the message; a partial ("P") one's
// does not. This reader is skiff's own; it follows the behaviour of
// k8s.io/cri-client/pkg/logs (which needs fsnotify, not a dependency here):
// tail counts file lines, since drops older messages, the timestamp prefix
// goes before each new output line, limitBytes cuts the output. The Docker
// JSON log format is not read: containerd never writes it.

// timestampFormat is the fixed-width RFC 3339 layout upstream prefixes
// lines with when timestamps=true.
const timestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// logOptions says which part of a log file to copy and how.
type logOptions struct {
	tail       int64     // lines to start from, counted from the end; negative for all
	limit      int64     // output bytes at most; 0 for no limit
	since      time.Time // messages stamped before this are dropped
	timestamps bool      // prefix each output line with its timestamp
	follow     bool      // at the end, wait for more while the container runs
}

// logFollow is what a follower needs besides the file: whether the container
// still runs (once it does not, the follower copies what is left and stops)
// and how often to look for more.
type logFollow struct {
	running    func(ctx context.Context) (bool, error)
	poll       time.Duration // how long to wait at the end before reading again
	checkEvery time.Duration // how often to ask running
	flush      func()        // pushes what was written to the client
}

// copyLog copies the messages of the CRI log file f selected by opts to out.
// With opts.follow it returns when the container has stopped and the file is
// drained, or when ctx ends (then with nil: the client went away).
func copyLog(ctx context.Context, f *os.File, opts logOptions, fw logFollow, out io.Writer) error {
	start, err := tailOffset(f, opts.tail)
	if err != nil {
		return err
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return fmt.Errorf("seek to %d in %s: %w", start, f.Name(), err)
	}
	w := &logWriter{out: out, opts: opts, remain: math.MaxInt64, lineStart: true}
	if opts.limit > 0 {
		w.remain = opts.limit
	}
	r := bufio.NewReaderSize(f, 64<<10)
	var (
		pending   []byte    // an incomplete last line, read before its writer finished it
		stopping  bool      // the container stopped: one more pass to the end, then done
		lastCheck time.Time // when running was last asked
	)
	for {
		line, err := r.ReadBytes('\n')
		switch {
		case err == nil:
			if len(pending) > 0 {
				line = append(pending, line...)
				pending = nil
			}
			if done, err := w.writeLine(line); done || err != nil {
				return err
			}
			continue
		case !errors.Is(err, io.EOF):
			return fmt.Errorf("read %s: %w", f.Name(), err)
		}
		pending = append(pending, line...)
		if !opts.follow {
			// As upstream: an unterminated last line is still shown.
			if len(pending) > 0 {
				_, err := w.writeLine(pending)
				return err
			}
			return nil
		}
		fw.flush()
		if stopping {
			return nil
		}
		if now := time.Now(); now.Sub(lastCheck) >= fw.checkEvery {
			lastCheck = now
			running, err := fw.running(ctx)
			if err != nil {
				return fmt.Errorf("check whether the container runs: %w", err)
			}
			if !running {
				stopping = true
				continue
			}
		}
		t := time.NewTimer(fw.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// logWriter turns parsed messages into output bytes.
type logWriter struct {
	out       io.Writer
	opts      logOptions
	remain    int64 // output bytes left under limitBytes
	lineStart bool  // the next message starts an output line
}

// writeLine writes one file line; done reports that limitBytes was reached.
// Lines that do not parse are skipped, as upstream does.
func (w *logWriter) writeLine(line []byte) (done bool, err error) {
	ts, msg, ok := parseCRILine(line)
	if !ok {
		return false, nil
	}
	atStart := w.lineStart
	w.lineStart = len(msg) == 0 || msg[len(msg)-1] == '\n'
	if ts.Before(w.opts.since) {
		return false, nil
	}
	if w.opts.timestamps && atStart {
		msg = append(append([]byte(ts.Format(timestampFormat)), ' '), msg...)
	}
	if int64(len(msg)) > w.remain {
		msg = msg[:w.remain]
	}
	n, err := w.out.Write(msg)
	w.remain -= int64(n)
	if err != nil {
		return true, fmt.Errorf("write log: %w", err)
	}
	return w.remain <= 0, nil
}

// parseCRILine splits "TIMESTAMP STREAM TAG MESSAGE" and returns the
// message as it belongs in the output: a full line keeps its newline, a
// partial one loses it.
func parseCRILine(line []byte) (ts time.Time, msg []byte, ok bool) {
	stamp, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return ts, nil, false
	}
	ts, err := time.Parse(time.RFC3339Nano, string(stamp))
	if err != nil {
		return ts, nil, false
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok || (string(stream) != "stdout" && string(stream) != "stderr") {
		return ts, nil, false
	}
	tags, msg, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return ts, nil, false
	}
	// Tags are ':'-separated; the first says full or partial.
	tag, _, _ := bytes.Cut(tags, []byte{':'})
	if string(tag) == "P" {
		msg = bytes.TrimSuffix(msg, []byte{'\n'})
	}
	return ts, msg, true
}

// tailOffset returns where the last n lines of f start: 0 for n < 0 (all),
// the end for n == 0. A trailing newline ends the last line rather than
// starting an empty one.
func tailOffset(f *os.File, n int64) (int64, error) {
	info, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	size := info.Size()
	if n < 0 {
		return 0, nil
	}
	if n == 0 {
		return size, nil
	}
	const block = 8 << 10
	buf := make([]byte, block)
	end := size
	lines := int64(0)
	first := true
	for end > 0 {
		begin := max(end-block, 0)
		chunk := buf[:end-begin]
		if _, err := f.ReadAt(chunk, begin); err != nil {
			return 0, fmt.Errorf("read %s: %w", f.Name(), err)
		}
		if first {
			chunk = bytes.TrimSuffix(chunk, []byte{'\n'})
			first = false
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] != '\n' {
				continue
			}
			if lines++; lines == n {
				return begin + int64(i) + 1, nil
			}
		}
		end = begin
	}
	return 0, nil
}
