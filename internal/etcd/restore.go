package etcd

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// restoreRevisionBump is how far Restore moves the restored database's
// revision forward, marking every revision up to the new one compacted.
// Clients that saw revisions newer than the snapshot's (informers,
// kubelets, controllers keeping resourceVersions) would otherwise watch
// from a revision the restored store has not reached yet and wait,
// silently, for it; past the bump their watches and reads at an old
// revision fail as compacted (410 Gone) and they list again. etcd added
// the bump (`etcdutl snapshot restore --bump-revision --mark-compacted`)
// for Kubernetes, whose docs recommend this amount: more writes than a
// cluster makes between a snapshot and its restore.
const restoreRevisionBump = 1_000_000_000

// restoreClusterToken is the initial cluster token of a restored member,
// the embedded member's own.
const restoreClusterToken = "skiff"

// ErrMemberRunning is Restore's error when a member runs on the data
// directory.
var ErrMemberRunning = errors.New("an etcd member is running on the data directory")

// Restore replaces dataDir (a member's directory, e.g. <data-dir>/etcd)
// with a one-member cluster restored from the snapshot at snapshotPath,
// which must end in its sha256 (as Save's do: a database file copied
// from a data directory is refused). The member is memberName with peer
// URL peerURL. A single member started on the restored directory may use
// another peer URL: etcd does not check a restarted member's against the
// one it stored. Other members join it afresh.
//
// Every key of the snapshot is restored as it was, at a revision moved
// forward by a billion, every older revision compacted (see
// restoreRevisionBump); leases are restored, and count their TTL afresh
// from the member's start.
//
// The member is written to a temporary directory beside dataDir and swaps
// in only once complete: an existing dataDir is moved to
// <dataDir>.old-<UTC time>, kept rather than deleted, and the temporary
// directory renamed to dataDir. A failed Restore leaves dataDir as it
// was. Restore refuses (ErrMemberRunning) while a member holds dataDir's
// database open.
func Restore(snapshotPath, dataDir, memberName, peerURL string) error {
	if memberName == "" {
		return errors.New("restore etcd: no member name")
	}
	if u, err := url.Parse(peerURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("restore etcd: peer URL %q: want http(s)://host:port", peerURL)
	}
	if dataDir == "" {
		return errors.New("restore etcd: no data directory")
	}
	dataDir = filepath.Clean(dataDir)
	if err := checkSnapshotFile(snapshotPath); err != nil {
		return fmt.Errorf("restore etcd: %w", err)
	}
	if err := checkNotRunning(dataDir); err != nil {
		return fmt.Errorf("restore etcd: %w", err)
	}

	parent := filepath.Dir(dataDir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("restore etcd: %w", err)
	}
	// MkdirTemp makes the directory with mode 0700, as etcd wants its
	// data directory.
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dataDir)+".restore-*")
	if err != nil {
		return fmt.Errorf("restore etcd: %w", err)
	}
	swapped := false
	defer func() {
		if !swapped {
			_ = os.RemoveAll(tmp)
		}
	}()
	// etcdutl reports through its errors; its logs only narrate.
	err = snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{
		SnapshotPath:        snapshotPath,
		Name:                memberName,
		OutputDataDir:       tmp,
		PeerURLs:            []string{peerURL},
		InitialCluster:      memberName + "=" + peerURL,
		InitialClusterToken: restoreClusterToken,
		RevisionBump:        restoreRevisionBump,
		MarkCompacted:       true,
	})
	if err != nil {
		return fmt.Errorf("restore etcd from %s: %w", snapshotPath, err)
	}
	if err := syncDir(tmp); err != nil {
		return fmt.Errorf("restore etcd: %w", err)
	}

	if _, err := os.Lstat(dataDir); err == nil {
		old := dataDir + ".old-" + time.Now().UTC().Format("20060102T150405Z")
		if _, err := os.Lstat(old); err == nil {
			return fmt.Errorf("restore etcd: %s: %w", old, fs.ErrExist)
		}
		if err := os.Rename(dataDir, old); err != nil {
			return fmt.Errorf("restore etcd: keep the old data: %w", err)
		}
		if err := os.Rename(tmp, dataDir); err != nil {
			if rerr := os.Rename(old, dataDir); rerr != nil {
				return fmt.Errorf("restore etcd: %w (and moving %s back failed: %v)", err, old, rerr)
			}
			return fmt.Errorf("restore etcd: %w", err)
		}
	} else if errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(tmp, dataDir); err != nil {
			return fmt.Errorf("restore etcd: %w", err)
		}
	} else {
		return fmt.Errorf("restore etcd: %w", err)
	}
	swapped = true
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("restore etcd: %w", err)
	}
	return nil
}

// checkNotRunning fails with ErrMemberRunning when a member has dataDir's
// database open: etcd's backend (bbolt) holds an exclusive flock on it
// as long as it runs, and the shared one asked for here is refused.
func checkNotRunning(dataDir string) error {
	db := filepath.Join(dataDir, "member", "snap", "db")
	f, err := os.Open(db)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("%w: %s", ErrMemberRunning, dataDir)
		}
		return fmt.Errorf("lock %s: %w", db, err)
	}
	// Closing the file releases the lock.
	return nil
}

// checkSnapshotFile checks that the file at path ends in the sha256 of
// what precedes it, as etcdutl does, for a clearer error than its own.
func checkSnapshotFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sum := &checksumWriter{h: sha256.New()}
	n, err := io.Copy(sum, f)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	if !sum.ok() {
		return fmt.Errorf("snapshot %s (%d bytes) is damaged or not a snapshot: it does not end in the sha256 of its content (a database copied from a data directory has none)", path, n)
	}
	return nil
}
