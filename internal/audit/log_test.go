package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func testEvent(id string, stage Stage) *Event {
	ev := NewEvent(httptest.NewRequest("GET", "/api/v1/namespaces/default/pods/p", nil), types.UID(id), LevelMetadata, metav1.NowMicro())
	ev.Stage, ev.Verb = stage, "get"
	return ev
}

// readEvents reads a log file: every line must be one event.
func readEvents(t *testing.T, path string) []Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%s: line %d: %v: %.200s", path, len(out)+1, err, sc.Text())
		}
		out = append(out, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLogBackend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "audit.log")
	reg := prometheus.NewRegistry()
	b, err := NewLogBackend(LogOptions{Path: path, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	// The file is there before the first event, private.
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("log file: %v %v", fi, err)
	}
	const n = 500
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ev := testEvent("id", StageResponseComplete)
			ev.AuditID = types.UID(strings.Repeat("x", i%7))
			b.ProcessEvent(ev)
		})
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(readEvents(t, path)); got != n {
		t.Errorf("%d events in the log, want %d", got, n)
	}
	// After Close, events are dropped and counted.
	b.ProcessEvent(testEvent("late", StageResponseComplete))
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if events, errs := counterValue(t, b.metrics.events), counterValue(t, b.metrics.errors); events != n+1 || errs != 1 {
		t.Errorf("apiserver_audit_event_total %v, apiserver_audit_error_total %v; want %d, 1", events, errs, n+1)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		if mf.GetName() == "apiserver_audit_error_total" && mf.GetMetric()[0].GetLabel()[0].GetValue() != "log" {
			t.Errorf("labels %v", mf.GetMetric()[0].GetLabel())
		}
	}
	if strings.Join(names, " ") != "apiserver_audit_error_total apiserver_audit_event_total" {
		t.Errorf("registered %v", names)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestLogBackendBadPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []LogOptions{
		{Path: filepath.Join(dir, "file", "audit.log")}, // a file as the directory
		{Path: ""},
		{Path: filepath.Join(dir, "a.log"), MaxSize: -1},
	} {
		if b, err := NewLogBackend(opts); err == nil {
			_ = b.Close()
			t.Errorf("%+v: no error", opts)
		}
	}
}

// The flags reach lumberjack.
func TestLumberjackOptions(t *testing.T) {
	lj := newLumberjack(LogOptions{Path: "/x/audit.log", MaxAge: 7, MaxBackups: 3, MaxSize: 50, Compress: true})
	if lj.Filename != "/x/audit.log" || lj.MaxAge != 7 || lj.MaxBackups != 3 || lj.MaxSize != 50 || !lj.Compress {
		t.Errorf("%+v", lj)
	}
}

// A file over --audit-log-maxsize is rotated, between lines.
func TestLogRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	b, err := NewLogBackend(LogOptions{Path: path, MaxSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("v", 10<<10)
	// One rotation: lumberjack names a rotated file by the millisecond,
	// and two rotations within one would give both the same name.
	const n = 150 // 1.5 MB
	for range n {
		ev := testEvent("id", StageResponseComplete)
		ev.Annotations = map[string]string{"big": big}
		b.ProcessEvent(ev)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "audit*.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("files %v: want the log and a rotated file", files)
	}
	total := 0
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 1<<20 {
			t.Errorf("%s: %d bytes, over 1 MB", f, fi.Size())
		}
		total += len(readEvents(t, f))
	}
	if total != n {
		t.Errorf("%d events in %d files, want %d", total, len(files), n)
	}
}

// gatedWriter blocks each Write until released, and says when a Write
// has begun.
type gatedWriter struct {
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.entered <- struct{}{}
	<-g.release
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

// When the writer falls behind, a request waits at most BlockTimeout for
// room, then its event is dropped and counted.
func TestLogBackendFull(t *testing.T) {
	g := &gatedWriter{entered: make(chan struct{}, 10), release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	b, err := newLogBackend(g, nil, LogOptions{QueueEvents: 1, BlockTimeout: 20 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	b.ProcessEvent(testEvent("1", StageResponseComplete))
	<-g.entered                                           // the writer holds event 1
	b.ProcessEvent(testEvent("2", StageResponseComplete)) // queued
	began := time.Now()
	b.ProcessEvent(testEvent("3", StageResponseComplete)) // no room: dropped
	if waited := time.Since(began); waited < 20*time.Millisecond {
		t.Errorf("the third event waited %v, want the block timeout", waited)
	}
	if got := counterValue(t, b.metrics.errors); got != 1 {
		t.Errorf("errors %v, want 1", got)
	}
	close(g.release)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(g.buf.String(), "\n"); got != 2 {
		t.Errorf("%d events written, want 2", got)
	}

	// The queue's bytes are bounded too.
	g = &gatedWriter{entered: make(chan struct{}, 10), release: make(chan struct{})}
	close(g.release)
	b, err = newLogBackend(g, nil, LogOptions{QueueBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	b.ProcessEvent(testEvent("1", StageResponseComplete)) // ~400 bytes
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if g.buf.Len() != 0 || counterValue(t, b.metrics.errors) != 1 {
		t.Errorf("an event over the queue's bytes: written %q, errors %v", g.buf.String(), counterValue(t, b.metrics.errors))
	}
}
