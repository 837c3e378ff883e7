package audit

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/natefinch/lumberjack.v2"
)

// LogOptions configure a LogBackend: upstream's --audit-log-* flags.
type LogOptions struct {
	// Path is the file the events go to, "-" for standard output.
	Path string
	// MaxAge is how many days a rotated file is kept (0: no limit),
	// MaxBackups how many rotated files are kept (0: all), MaxSize the
	// size in megabytes at which the file is rotated (0: lumberjack's
	// default, 100).
	MaxAge     int
	MaxBackups int
	MaxSize    int
	// Compress gzips the rotated files.
	Compress bool

	// QueueEvents and QueueBytes bound the events waiting for the writer
	// (0: 10000 events, as upstream's batch buffer, and 64 MiB).
	QueueEvents int
	QueueBytes  int64
	// BlockTimeout is how long a request waits for room in a full queue
	// before its event is dropped (0: 100ms).
	BlockTimeout time.Duration

	// Registerer receives apiserver_audit_event_total and
	// apiserver_audit_error_total; nil means none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// LogBackend writes events, one JSON object a line, to a file rotated by
// size, or to standard output. ProcessEvent encodes the event on the
// caller's goroutine and queues it; one goroutine writes the queue out in
// batches, a batch never splitting a line across rotated files.
type LogBackend struct {
	out     io.Writer
	closer  io.Closer // nil for standard output
	opts    LogOptions
	log     *slog.Logger
	metrics logMetrics

	queue  chan []byte
	queued atomic.Int64 // bytes in queue

	mu     sync.RWMutex // held for reading while sending to queue
	closed bool
	done   chan struct{} // closed when the writer has exited
	err    error         // the writer's last error, read after done

	lastWarn atomic.Int64 // unix nanos of the last error logged
}

type logMetrics struct {
	events prometheus.Counter
	errors prometheus.Counter
}

// NewLogBackend opens (creating it and its directory if need be) the log
// file and starts the writer. Close stops it.
func NewLogBackend(opts LogOptions) (*LogBackend, error) {
	if opts.Path == "" {
		return nil, errors.New("audit log: no path")
	}
	if opts.MaxAge < 0 || opts.MaxBackups < 0 || opts.MaxSize < 0 {
		return nil, fmt.Errorf("audit log: --audit-log-maxage (%d), --audit-log-maxbackup (%d) and --audit-log-maxsize (%d) can not be negative",
			opts.MaxAge, opts.MaxBackups, opts.MaxSize)
	}
	var out io.Writer = os.Stdout
	var closer io.Closer
	if opts.Path != "-" {
		// lumberjack opens the file on its first write: open it now, so
		// that a path the server cannot write fails the start.
		if err := os.MkdirAll(filepath.Dir(opts.Path), 0o700); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		f, err := os.OpenFile(opts.Path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		_ = f.Close()
		lj := newLumberjack(opts)
		out, closer = lj, lj
	}
	return newLogBackend(out, closer, opts)
}

// newLogBackend starts a backend writing to out; closer, if not nil, is
// closed by Close.
func newLogBackend(out io.Writer, closer io.Closer, opts LogOptions) (*LogBackend, error) {
	if opts.QueueEvents <= 0 {
		opts.QueueEvents = 10000
	}
	if opts.QueueBytes <= 0 {
		opts.QueueBytes = 64 << 20
	}
	if opts.BlockTimeout <= 0 {
		opts.BlockTimeout = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	b := &LogBackend{out: out, closer: closer, opts: opts, log: opts.Logger,
		queue: make(chan []byte, opts.QueueEvents), done: make(chan struct{})}
	b.metrics = logMetrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "apiserver_audit_event_total",
			Help: "Counter of audit events generated and sent to the audit backend."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "apiserver_audit_error_total",
			Help:        "Counter of audit events that failed to be audited properly. Plugin identifies the plugin affected by the error.",
			ConstLabels: prometheus.Labels{"plugin": "log"}}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{b.metrics.events, b.metrics.errors} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("audit log metrics: %w", err)
			}
		}
	}
	go b.write()
	return b, nil
}

func newLumberjack(opts LogOptions) *lumberjack.Logger {
	return &lumberjack.Logger{
		Filename:   opts.Path,
		MaxAge:     opts.MaxAge,
		MaxBackups: opts.MaxBackups,
		MaxSize:    opts.MaxSize,
		Compress:   opts.Compress,
	}
}

// Options returns the options the backend runs with, defaults filled in.
func (b *LogBackend) Options() LogOptions { return b.opts }

// ProcessEvent encodes ev and queues it for writing. It does not keep ev:
// the caller may change it afterwards. It waits at most
// opts.BlockTimeout for room; an event that finds none, or comes after
// Close, is dropped and counted in apiserver_audit_error_total.
func (b *LogBackend) ProcessEvent(ev *Event) {
	b.metrics.events.Inc()
	line, err := Encode(make([]byte, 0, 1024), ev) // most events at Metadata fit
	if err != nil {
		b.fail(1, "encoding an audit event", err)
		return
	}
	n := int64(len(line))
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		b.fail(1, "audit event after the log was closed", nil)
		return
	}
	if b.queued.Add(n) > b.opts.QueueBytes {
		b.queued.Add(-n)
		b.fail(1, "audit queue full: event dropped", nil)
		return
	}
	select {
	case b.queue <- line:
		return
	default:
	}
	t := time.NewTimer(b.opts.BlockTimeout)
	defer t.Stop()
	select {
	case b.queue <- line:
	case <-t.C:
		b.queued.Add(-n)
		b.fail(1, "audit queue full: event dropped", nil)
	}
}

// batchBytes is how much the writer gathers before it writes: whole
// lines, so that rotation never splits one.
const batchBytes = 256 << 10

func (b *LogBackend) write() {
	defer close(b.done)
	var batch []byte
	lines := 0
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if _, err := b.out.Write(batch); err != nil {
			b.err = err
			b.fail(lines, "writing the audit log", err)
		}
		b.queued.Add(-int64(len(batch)))
		batch, lines = batch[:0], 0
		if cap(batch) > 4*batchBytes {
			batch = nil // after a huge event
		}
	}
	for line := range b.queue {
		batch = append(batch, line...)
		lines++
	more:
		for len(batch) < batchBytes {
			select {
			case line, ok := <-b.queue:
				if !ok {
					break more
				}
				batch = append(batch, line...)
				lines++
			default:
				break more
			}
		}
		flush()
	}
	flush()
}

// fail counts n lost events and logs the error, at most every 10s.
func (b *LogBackend) fail(n int, msg string, err error) {
	b.metrics.errors.Add(float64(n))
	now := time.Now().UnixNano()
	last := b.lastWarn.Load()
	if now-last < int64(10*time.Second) || !b.lastWarn.CompareAndSwap(last, now) {
		return
	}
	b.log.Warn(msg, "events", n, "err", err)
}

// Close writes out the events queued so far and closes the file. Events
// processed afterwards are dropped. It returns the writer's last error.
func (b *LogBackend) Close() error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	<-b.done
	err := b.err
	if b.closer != nil {
		if cerr := b.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
