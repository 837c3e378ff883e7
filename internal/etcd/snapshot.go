package etcd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/storage/schema"
)

// A snapshot is the member's bbolt database as etcd's Maintenance.Snapshot
// streams it: the database followed by its sha256 (the form `etcdutl
// snapshot restore` and Restore check). Snapshots of one series live in
// one directory as <name>-<unix seconds>, k3s's scheme without its node
// part (the name carries it: "etcd-snapshot-<hostname>").

// ClientURLFile is the file in which the embedded member of the server
// whose data directory (--data-dir, not the member's own directory) is
// dataDir writes its client URL at start, one line
// ("https://127.0.0.1:41234"), for clients outside the server process
// such as `skiff etcd-snapshot save`. It lies in the member's directory,
// <dataDir>/etcd.
func ClientURLFile(dataDir string) string {
	return filepath.Join(dataDir, "etcd", clientURLFileName)
}

// clientURLFileName is ClientURLFile's name within the member's directory.
const clientURLFileName = "client-url"

// writeClientURL writes url to the client URL file in memberDir, the
// member's directory (Config.DataDir): ClientURLFile of the server's
// data directory. A reader sees the previous line or the new one, never
// part of either.
func writeClientURL(memberDir, url string) error {
	f, err := os.CreateTemp(memberDir, "."+clientURLFileName+"-*")
	if err != nil {
		return fmt.Errorf("client URL file: %w", err)
	}
	defer os.Remove(f.Name()) // fails once renamed
	_, err = f.WriteString(url + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(memberDir, clientURLFileName))
	}
	if err != nil {
		return fmt.Errorf("client URL file: %w", err)
	}
	return nil
}

// Snapshot is a snapshot file.
type Snapshot struct {
	// Name is the file's name, <name>-<unix seconds> for the snapshots
	// Save takes.
	Name string
	// Path is the file's path, Name within its directory.
	Path string
	// Size is the file's size in bytes.
	Size int64
	// Created is the time in the name when it has one (to the second),
	// the file's modification time otherwise.
	Created time.Time
}

// ErrInvalidName is returned for a snapshot name that is empty or ".", or
// holds ".." or a path separator: a name never leads out of its
// directory. Save also refuses a name that starts with a dot (List hides
// those).
var ErrInvalidName = errors.New("invalid snapshot name")

// Save streams a snapshot of the member client talks to (the first of
// its endpoints that answers) into dir/<name>-<unix seconds> and returns
// it. dir is created with mode 0700 if missing, the file has mode 0600.
//
// The file appears under its name only once complete, checked and on
// disk: it is written to a hidden temporary file in dir, its sha256
// (which etcd appends) checked, opened as a bbolt database, fsynced and
// renamed, and dir fsynced. A failed or canceled Save leaves nothing
// behind. Save fails with an error wrapping fs.ErrExist, rather than
// replace it, if a snapshot of that name and second exists.
func Save(ctx context.Context, client *clientv3.Client, dir, name string) (Snapshot, error) {
	if err := checkName(name); err != nil {
		return Snapshot{}, err
	}
	if strings.HasPrefix(name, ".") {
		return Snapshot{}, fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	// Ended already: do not ask. An embedded member starts serving the
	// snapshot whatever the client's context says, and etcd 3.6 panics
	// should the member close while it begins.
	if err := ctx.Err(); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot directory: %w", err)
	}
	created := time.Now().Truncate(time.Second)
	s := Snapshot{Name: name + "-" + strconv.FormatInt(created.Unix(), 10), Created: created}
	s.Path = filepath.Join(dir, s.Name)
	if _, err := os.Lstat(s.Path); err == nil {
		return Snapshot{}, fmt.Errorf("snapshot %s: %w", s.Path, fs.ErrExist)
	}

	// CreateTemp makes the file with mode 0600. The leading dot keeps
	// it out of List.
	f, err := os.CreateTemp(dir, "."+s.Name+".part-*")
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()

	// The client's goroutine that receives the stream ends with it:
	// canceling sctx on return ends it should Save return early.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := client.SnapshotWithVersion(sctx)
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	defer resp.Snapshot.Close()
	sum := &checksumWriter{h: sha256.New()}
	s.Size, err = io.Copy(io.MultiWriter(f, sum), resp.Snapshot)
	// The in-process client (v3client, the API server's) ends a stream
	// the member completed by canceling the stream's own context, not
	// with io.EOF: context.Canceled while sctx is live is that end. The
	// sha256 tells a complete stream from a cut one either way.
	if err != nil && !(errors.Is(err, context.Canceled) && sctx.Err() == nil) {
		return Snapshot{}, fmt.Errorf("snapshot: receive: %w", err)
	}
	if !sum.ok() {
		return Snapshot{}, fmt.Errorf("snapshot: %d bytes received that do not end in their sha256", s.Size)
	}
	if err := f.Sync(); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	if err := checkDatabase(tmp); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	if err := os.Rename(tmp, s.Path); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	done = true
	if err := syncDir(dir); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %s: %w", s.Path, err)
	}
	return s, nil
}

// checksumWriter hashes what is written to it except the last
// sha256.Size bytes, which it keeps: etcd's snapshot stream is the
// database followed by its sha256.
type checksumWriter struct {
	h    hash.Hash
	tail []byte
}

func (w *checksumWriter) Write(p []byte) (int, error) {
	if len(p) >= sha256.Size {
		w.h.Write(w.tail)
		w.h.Write(p[:len(p)-sha256.Size])
		w.tail = append(w.tail[:0], p[len(p)-sha256.Size:]...)
		return len(p), nil
	}
	w.tail = append(w.tail, p...)
	if extra := len(w.tail) - sha256.Size; extra > 0 {
		w.h.Write(w.tail[:extra])
		w.tail = append(w.tail[:0], w.tail[extra:]...)
	}
	return len(p), nil
}

// ok reports whether the bytes written end in the sha256 of those before
// them.
func (w *checksumWriter) ok() bool {
	return len(w.tail) == sha256.Size && bytes.Equal(w.h.Sum(nil), w.tail)
}

// checkDatabase opens the snapshot at path as a bbolt database and looks
// for etcd's key and meta buckets: a cheap check that it is an etcd
// backend (the pages are not walked; the sha256 vouches for them).
func checkDatabase(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("not a bbolt database: %w", err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{schema.Key.Name(), schema.Meta.Name()} {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("not an etcd database: no %q bucket", b)
			}
		}
		return nil
	})
}

// List returns the snapshots in dir, oldest first (by Created, then
// name). Hidden files (Save's temporary ones) and directories are left
// out. A missing dir holds no snapshots.
func List(dir string) ([]Snapshot, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("snapshots: %w", err)
	}
	var out []Snapshot
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("snapshots: %w", err)
		}
		s := Snapshot{Name: e.Name(), Path: filepath.Join(dir, e.Name()), Size: info.Size(), Created: info.ModTime()}
		if _, sec, ok := splitName(e.Name()); ok {
			s.Created = time.Unix(sec, 0)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Snapshot) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// Delete removes the named snapshots from dir. It refuses, before
// removing any, names that are not a file's name in dir (see
// ErrInvalidName). A name that does not exist is an error wrapping
// fs.ErrNotExist; the others are removed all the same.
func Delete(dir string, names ...string) error {
	for _, n := range names {
		if err := checkName(n); err != nil {
			return err
		}
	}
	var errs []error
	for _, n := range names {
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			errs = append(errs, fmt.Errorf("delete snapshot: %w", err))
		}
	}
	if len(errs) == 0 {
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("delete snapshot: %w", err)
		}
	}
	return errors.Join(errs...)
}

// Prune deletes the snapshots of the series prefix in dir (those named
// <prefix>-<unix seconds>, as Save names them) but the newest keep, and
// returns the names it deleted, oldest first. Other files are left
// alone: another series' (prefix "etcd-snapshot-a" does not match
// "etcd-snapshot-a2-1700000000"), or one renamed by hand. keep must be at
// least 1: deleting a whole series is Delete's job. Should a deletion
// fail, Prune goes on with the others and returns the names it did
// delete with the error.
func Prune(dir, prefix string, keep int) ([]string, error) {
	if err := checkName(prefix); err != nil {
		return nil, err
	}
	if keep < 1 {
		return nil, fmt.Errorf("prune snapshots: keep %d, must be at least 1", keep)
	}
	all, err := List(dir)
	if err != nil {
		return nil, err
	}
	var series []Snapshot
	for _, s := range all {
		if p, _, ok := splitName(s.Name); ok && p == prefix {
			series = append(series, s)
		}
	}
	if len(series) <= keep {
		return nil, nil
	}
	var (
		deleted []string
		errs    []error
	)
	for _, s := range series[:len(series)-keep] {
		if err := os.Remove(s.Path); err != nil {
			errs = append(errs, fmt.Errorf("prune snapshots: %w", err))
			continue
		}
		deleted = append(deleted, s.Name)
	}
	if len(deleted) > 0 {
		if err := syncDir(dir); err != nil {
			errs = append(errs, fmt.Errorf("prune snapshots: %w", err))
		}
	}
	return deleted, errors.Join(errs...)
}

// splitName splits a name of the form <prefix>-<unix seconds>.
func splitName(name string) (prefix string, sec int64, ok bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return "", 0, false
	}
	digits := name[i+1:]
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return "", 0, false
	}
	sec, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return name[:i], sec, true
}

func checkName(name string) error {
	if name == "" || name == "." || strings.Contains(name, "..") || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	return nil
}

// syncDir fsyncs a directory, making the renames and removals in it
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
