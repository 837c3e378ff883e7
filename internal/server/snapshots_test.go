package server

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-io/skiff/internal/etcd"
	"github.com/skiff-io/skiff/internal/pki"
)

// startServerEtcd starts an embedded etcd member laid out as the server
// lays out its data directory: certificates under <dataDir>/tls, the
// member in <dataDir>/etcd, its client URL in etcd.ClientURLFile.
func startServerEtcd(t *testing.T) (dataDir string, db *etcd.Etcd) {
	t.Helper()
	dataDir = t.TempDir()
	b, err := pki.Ensure(pki.Config{Dir: filepath.Join(dataDir, "tls")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err = etcd.Start(ctx, etcd.Config{
		DataDir:  filepath.Join(dataDir, "etcd"),
		CertFile: b.EtcdServerCertFile, KeyFile: b.EtcdServerKeyFile, TrustedCAFile: b.EtcdCAFile,
		ClientCAFile: b.EtcdCAFile, ClientCertFile: b.EtcdClientCertFile, ClientKeyFile: b.EtcdClientKeyFile,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("etcd.Start: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	// What the member writes at start (in the server).
	if err := os.WriteFile(etcd.ClientURLFile(dataDir), []byte(db.Endpoints()[0]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dataDir, db
}

// logEvents is a slog.Handler that sends the message of each record to
// a channel, for tests to wait on.
type logEvents struct{ c chan string }

func (h logEvents) Enabled(context.Context, slog.Level) bool { return true }
func (h logEvents) Handle(_ context.Context, r slog.Record) error {
	h.c <- r.Message
	return nil
}
func (h logEvents) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logEvents) WithGroup(string) slog.Handler      { return h }

func TestRunSnapshotsKeepsRetention(t *testing.T) {
	_, db := startServerEtcd(t)
	s := SnapshotSchedule{Cron: "@every 1s", Retention: 2, Dir: filepath.Join(t.TempDir(), "snapshots"), Name: "etcd-snapshot-test"}
	events := logEvents{c: make(chan string, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runSnapshots(ctx, db.Client(), s, slog.New(events)) }()

	saved, pruned := 0, 0
	deadline := time.After(30 * time.Second)
	for saved < 4 || pruned < 2 {
		select {
		case msg := <-events.c:
			switch msg {
			case "etcd snapshot saved":
				saved++
			case "etcd snapshot pruned":
				pruned++
			case "etcd snapshot failed", "pruning etcd snapshots failed":
				t.Errorf("runSnapshots logged %q", msg)
			}
		case err := <-done:
			t.Fatalf("runSnapshots returned early: %v", err)
		case <-deadline:
			t.Fatalf("%d snapshots saved, %d pruned in 30s; want 4 and 2", saved, pruned)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("runSnapshots: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("runSnapshots did not return after its context ended")
	}

	list, err := etcd.List(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("%d snapshots kept, want 2: %v", len(list), list)
	}
	for _, snap := range list {
		if !strings.HasPrefix(snap.Name, s.Name+"-") {
			t.Errorf("snapshot %s not of the series %s", snap.Name, s.Name)
		}
	}
}

func TestSnapshotScheduleCheck(t *testing.T) {
	tests := []struct {
		cron      string
		retention int
		wantErr   bool
	}{
		{DefaultSnapshotCron, DefaultSnapshotRetention, false},
		{"@every 1s", 0, false},
		{"@daily", 1, false},
		{"CRON_TZ=UTC 30 2 * * *", 1, false},
		{"", 5, true},
		{"every day", 5, true},
		{"0 */12 * *", 5, true}, // four fields
		{"0 0 30 2 *", 5, true}, // 30 February
		{"0 */12 * * *", -1, true},
	}
	for _, tc := range tests {
		s := SnapshotSchedule{Cron: tc.cron, Retention: tc.retention, Dir: t.TempDir(), Name: "n"}
		err := s.check()
		if (err != nil) != tc.wantErr {
			t.Errorf("check(%q, %d) = %v, want error %v", tc.cron, tc.retention, err, tc.wantErr)
		}
		if err != nil && tc.retention >= 0 && !strings.Contains(err.Error(), "--etcd-snapshot-schedule-cron") {
			t.Errorf("check(%q) = %v, want the flag named", tc.cron, err)
		}
	}

	// runSnapshots returns a bad schedule's error at once.
	err := runSnapshots(context.Background(), nil, SnapshotSchedule{Cron: "nope", Dir: t.TempDir(), Name: "n"}, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Errorf("runSnapshots with a bad schedule returned nil")
	}

	got, err := SnapshotSchedule{Cron: DefaultSnapshotCron}.withDefaults("/var/lib/skiff")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	want := SnapshotSchedule{Cron: DefaultSnapshotCron, Dir: "/var/lib/skiff/snapshots", Name: "etcd-snapshot-" + strings.ToLower(host)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("withDefaults (-want +got):\n%s", diff)
	}
}

func TestEtcdSnapshotCommands(t *testing.T) {
	dataDir, _ := startServerEtcd(t)
	cfg := EtcdSnapshotConfig{DataDir: dataDir, Name: "on-demand-test"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var out bytes.Buffer
	if err := EtcdSnapshotSave(ctx, cfg, &out); err != nil {
		t.Fatalf("save: %v", err)
	}
	path := strings.TrimSpace(out.String())
	if filepath.Dir(path) != filepath.Join(dataDir, "snapshots") || !strings.HasPrefix(filepath.Base(path), "on-demand-test-") {
		t.Errorf("save printed %q, want <data-dir>/snapshots/on-demand-test-<time>", path)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	// An older snapshot of the series, and one of another series.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"on-demand-test-100", "etcd-snapshot-test-200"} {
		if err := os.WriteFile(filepath.Join(dataDir, "snapshots", n), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	out.Reset()
	if err := EtcdSnapshotList(cfg, &out); err != nil {
		t.Fatalf("ls: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "Name Location Size Created" {
		t.Fatalf("ls printed:\n%s\nwant a header and 3 rows", out.String())
	}
	for i, name := range []string{"on-demand-test-100", "etcd-snapshot-test-200", filepath.Base(path)} {
		p := filepath.Join(dataDir, "snapshots", name)
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(lines[i+1])
		if len(f) != 4 || f[0] != name || f[1] != "file://"+p || f[2] != strconv.FormatInt(info.Size(), 10) {
			t.Errorf("ls row %d = %q, want %s, file://%s, %d", i+1, lines[i+1], name, p, info.Size())
			continue
		}
		if _, err := time.Parse(time.RFC3339, f[3]); err != nil {
			t.Errorf("ls row %d created %q: %v", i+1, f[3], err)
		}
	}

	out.Reset()
	cfg.Retention = 1
	if err := EtcdSnapshotPrune(cfg, &out); err != nil {
		t.Fatalf("prune: %v", err)
	}
	if want := filepath.Join(dataDir, "snapshots", "on-demand-test-100") + "\n"; out.String() != want {
		t.Errorf("prune printed %q, want %q", out.String(), want)
	}
	cfg.Retention = 0
	if err := EtcdSnapshotPrune(cfg, &out); err == nil {
		t.Errorf("prune with retention 0 succeeded")
	}

	out.Reset()
	if err := EtcdSnapshotDelete(cfg, []string{"etcd-snapshot-test-200"}, &out); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := EtcdSnapshotDelete(cfg, []string{"../etcd/client-url"}, &out); err == nil {
		t.Errorf("delete of ../etcd/client-url succeeded")
	}
	list, err := etcd.List(filepath.Join(dataDir, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Path != path {
		t.Errorf("left %v, want only %s", list, path)
	}
}

func TestEtcdSnapshotSaveUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()

	// No server has run on the data dir.
	dataDir := t.TempDir()
	err := EtcdSnapshotSave(ctx, EtcdSnapshotConfig{DataDir: dataDir}, new(bytes.Buffer))
	if err == nil || !strings.Contains(err.Error(), "not reachable") || !strings.Contains(err.Error(), etcd.ClientURLFile(dataDir)+" does not exist") {
		t.Errorf("save without a client URL file = %v; want not reachable, file missing", err)
	}

	// The server has stopped: its URL leads nowhere.
	dataDir, db := startServerEtcd(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "https://" + ln.Addr().String()
	ln.Close()
	if err := os.WriteFile(etcd.ClientURLFile(dataDir), []byte(dead+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = EtcdSnapshotSave(ctx, EtcdSnapshotConfig{DataDir: dataDir}, new(bytes.Buffer))
	if err == nil || !strings.Contains(err.Error(), "not reachable at "+dead) {
		t.Errorf("save against a stopped server = %v; want not reachable at %s", err, dead)
	}
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q spans lines", err)
	}
	if list, _ := etcd.List(filepath.Join(dataDir, "snapshots")); len(list) != 0 {
		t.Errorf("snapshots after a failed save: %v", list)
	}
}
