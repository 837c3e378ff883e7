package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/robfig/cron/v3"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/skiff-io/skiff/internal/etcd"
)

// Snapshots of the embedded etcd, as k3s takes them: on a schedule by the
// server (runSnapshots), and on demand by `skiff etcd-snapshot save`,
// which reaches the running member as a client. The two are separate
// series, etcd-snapshot-<hostname>-<unix seconds> and
// on-demand-<hostname>-<unix seconds>, so that the schedule's retention
// never deletes a snapshot taken by hand.

// k3s's defaults: a snapshot at 0:00 and 12:00, the newest 5 kept.
const (
	DefaultSnapshotCron      = "0 */12 * * *"
	DefaultSnapshotRetention = 5
)

// Snapshot series prefixes; the hostname follows.
const (
	scheduledSnapshotPrefix = "etcd-snapshot"
	onDemandSnapshotPrefix  = "on-demand"
)

// SnapshotSchedule is when the server snapshots its embedded etcd, where
// to, and how many snapshots it keeps (--etcd-snapshot-*).
type SnapshotSchedule struct {
	// Cron is a standard five-field cron expression ("0 */12 * * *") or
	// a descriptor ("@daily", "@every 6h"), in local time unless it
	// starts with CRON_TZ=<zone>.
	Cron string
	// Retention is how many snapshots of the series are kept, the
	// newest; 0 keeps them all.
	Retention int
	// Dir is the directory the snapshots are written to
	// (<data-dir>/snapshots when empty: see withDefaults).
	Dir string
	// Name is the series' name: the snapshots are <Name>-<unix
	// seconds> (etcd-snapshot-<hostname> when empty).
	Name string
}

// withDefaults fills Dir and Name when empty.
func (s SnapshotSchedule) withDefaults(dataDir string) (SnapshotSchedule, error) {
	if s.Dir == "" {
		s.Dir = defaultSnapshotDir(dataDir)
	}
	if s.Name == "" {
		name, err := defaultSnapshotName(scheduledSnapshotPrefix)
		if err != nil {
			return s, err
		}
		s.Name = name
	}
	return s, nil
}

// check validates s: the server calls it before it starts anything, so
// that a bad --etcd-snapshot-schedule-cron stops it at once.
func (s SnapshotSchedule) check() error {
	_, err := s.parse()
	return err
}

func (s SnapshotSchedule) parse() (cron.Schedule, error) {
	sched, err := cron.ParseStandard(s.Cron)
	if err != nil {
		return nil, fmt.Errorf("--etcd-snapshot-schedule-cron %q: %w", s.Cron, err)
	}
	if sched.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("--etcd-snapshot-schedule-cron %q: never fires", s.Cron)
	}
	if s.Retention < 0 {
		return nil, fmt.Errorf("--etcd-snapshot-retention %d: must not be negative", s.Retention)
	}
	return sched, nil
}

// runSnapshots snapshots the member client talks to on s's schedule into
// s.Dir as s.Name-<unix seconds>, and after each snapshot deletes the
// series' oldest beyond s.Retention. A schedule that does not parse is an
// error returned at once; a snapshot or prune that fails is logged, and
// the next is taken on schedule. A fire missed while a snapshot was being
// taken is skipped. It returns nil once ctx has ended, a snapshot in
// progress canceled (and its partial file removed).
//
// s must have its Dir and Name (withDefaults).
func runSnapshots(ctx context.Context, client *clientv3.Client, s SnapshotSchedule, lg *slog.Logger) error {
	sched, err := s.parse()
	if err != nil {
		return err
	}
	if s.Dir == "" || s.Name == "" {
		return errors.New("etcd snapshots: no directory or name")
	}
	lg = lg.With("component", "etcd-snapshots")
	lg.Info("etcd snapshots scheduled", "cron", s.Cron, "retention", s.Retention, "dir", s.Dir, "next", sched.Next(time.Now()))
	for {
		timer := time.NewTimer(time.Until(sched.Next(time.Now())))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		snapshotAndPrune(ctx, client, s, lg)
	}
}

// snapshotAndPrune takes one scheduled snapshot and applies the
// retention, logging the outcome.
func snapshotAndPrune(ctx context.Context, client *clientv3.Client, s SnapshotSchedule, lg *slog.Logger) {
	began := time.Now()
	snap, err := etcd.Save(ctx, client, s.Dir, s.Name)
	if err != nil {
		if ctx.Err() == nil {
			lg.Error("etcd snapshot failed", "dir", s.Dir, "err", err)
		}
		return
	}
	lg.Info("etcd snapshot saved", "path", snap.Path, "size", snap.Size, "took", time.Since(began).Round(time.Millisecond))
	if s.Retention == 0 {
		return
	}
	pruned, err := etcd.Prune(s.Dir, s.Name, s.Retention)
	for _, name := range pruned {
		lg.Info("etcd snapshot pruned", "path", filepath.Join(s.Dir, name))
	}
	if err != nil {
		lg.Error("pruning etcd snapshots failed", "dir", s.Dir, "retention", s.Retention, "err", err)
	}
}

func defaultSnapshotDir(dataDir string) string { return filepath.Join(dataDir, "snapshots") }

func defaultSnapshotName(prefix string) (string, error) {
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("snapshot name: %w", err)
	}
	return prefix + "-" + strings.ToLower(h), nil
}

// EtcdSnapshotConfig is `skiff etcd-snapshot`'s configuration.
type EtcdSnapshotConfig struct {
	// DataDir is the server's data directory: its etcd client
	// certificate and the file its member writes its client URL to
	// (etcd.ClientURLFile) are there.
	DataDir string
	// Dir is the snapshot directory, <DataDir>/snapshots when empty.
	Dir string
	// Name is the series save writes and prune prunes,
	// on-demand-<hostname> when empty.
	Name string
	// Retention is how many snapshots of the series prune keeps.
	Retention int
}

func (c EtcdSnapshotConfig) dir() string {
	if c.Dir != "" {
		return c.Dir
	}
	return defaultSnapshotDir(c.DataDir)
}

func (c EtcdSnapshotConfig) name() (string, error) {
	if c.Name != "" {
		return c.Name, nil
	}
	return defaultSnapshotName(onDemandSnapshotPrefix)
}

// etcdDialTimeout bounds how long `skiff etcd-snapshot save` tries to
// reach the server's etcd.
const etcdDialTimeout = 10 * time.Second

// EtcdSnapshotSave snapshots the etcd of the server running on
// cfg.DataDir into cfg.Dir and prints the snapshot's path.
func EtcdSnapshotSave(ctx context.Context, cfg EtcdSnapshotConfig, out io.Writer) error {
	name, err := cfg.name()
	if err != nil {
		return err
	}
	db, err := dialServerEtcd(ctx, cfg.DataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	snap, err := etcd.Save(ctx, db.Client(), cfg.dir(), name)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, snap.Path)
	return err
}

// dialServerEtcd connects to the embedded etcd member of the server
// running on dataDir, at the client URL it wrote, with the server's own
// etcd client certificate, and waits until it answers.
func dialServerEtcd(ctx context.Context, dataDir string) (*etcd.Etcd, error) {
	urlFile := etcd.ClientURLFile(dataDir)
	raw, err := os.ReadFile(urlFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the server's etcd is not reachable: %s does not exist (no server with embedded etcd has run on data dir %s)", urlFile, dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("the server's etcd is not reachable: %w", err)
	}
	endpoint := strings.TrimSpace(string(raw))
	if u, err := url.Parse(endpoint); err != nil || u.Host == "" {
		return nil, fmt.Errorf("the server's etcd is not reachable: %s holds %q, not a URL", urlFile, endpoint)
	}
	// The files pki.Ensure keeps under <data-dir>/tls/etcd.
	tlsDir := filepath.Join(dataDir, "tls", "etcd")
	cfg := etcd.Config{
		Servers:        []string{endpoint},
		ClientCAFile:   filepath.Join(tlsDir, "ca.crt"),
		ClientCertFile: filepath.Join(tlsDir, "client.crt"),
		ClientKeyFile:  filepath.Join(tlsDir, "client.key"),
		// The client's retries while the member is away say nothing the
		// error does not.
		Logger: slog.New(slog.DiscardHandler),
	}
	for _, f := range []string{cfg.ClientCAFile, cfg.ClientCertFile, cfg.ClientKeyFile} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("the server's etcd client certificate: %w", err)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, etcdDialTimeout)
	defer cancel()
	db, err := etcd.Start(dctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("the server's etcd is not reachable at %s (read from %s; is the server running?): %w", endpoint, urlFile, err)
	}
	return db, nil
}

// EtcdSnapshotList prints the snapshots in cfg.Dir, oldest first, as a
// table: name, location (a file:// URL), size in bytes, creation time.
func EtcdSnapshotList(cfg EtcdSnapshotConfig, out io.Writer) error {
	list, err := etcd.List(cfg.dir())
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "Name\tLocation\tSize\tCreated")
	for _, s := range list {
		loc := url.URL{Scheme: "file", Path: s.Path}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", s.Name, loc.String(), s.Size, s.Created.Format(time.RFC3339))
	}
	return tw.Flush()
}

// EtcdSnapshotDelete deletes the named snapshots from cfg.Dir and prints
// each path deleted.
func EtcdSnapshotDelete(cfg EtcdSnapshotConfig, names []string, out io.Writer) error {
	dir := cfg.dir()
	if err := etcd.Delete(dir, names...); err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintln(out, filepath.Join(dir, n))
	}
	return nil
}

// EtcdSnapshotPrune deletes the snapshots of cfg.Name's series in
// cfg.Dir but the newest cfg.Retention, and prints each path deleted.
func EtcdSnapshotPrune(cfg EtcdSnapshotConfig, out io.Writer) error {
	if cfg.Retention < 1 {
		return fmt.Errorf("--snapshot-retention %d: must be at least 1 (delete removes a whole series)", cfg.Retention)
	}
	name, err := cfg.name()
	if err != nil {
		return err
	}
	dir := cfg.dir()
	pruned, err := etcd.Prune(dir, name, cfg.Retention)
	for _, n := range pruned {
		fmt.Fprintln(out, filepath.Join(dir, n))
	}
	return err
}
