package etcd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The restored member: the embedded member's name, and any peer URL (a
// single member restarts on another).
const (
	restoreMember  = "skiff"
	restorePeerURL = "https://127.0.0.1:2380"
)

func TestRestore(t *testing.T) {
	cfg := embeddedConfig(t)
	e := start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	putKeys(t, e.Client(), 200)
	// Updates and deletions, and a key on a lease.
	if _, err := e.Client().Put(ctx, "/registry/snap/k001", "updated"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Client().Delete(ctx, "/registry/snap/k002"); err != nil {
		t.Fatal(err)
	}
	lease, err := e.Client().Grant(ctx, 3600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Client().Put(ctx, "/registry/leased", "x", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	want := readKeys(t, e.Client())
	if len(want) != 200 {
		t.Fatalf("%d keys before the snapshot, want 200", len(want))
	}
	snaps := filepath.Join(t.TempDir(), "snapshots")
	s, err := Save(ctx, e.Client(), snaps, "etcd-snapshot-test")
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	oldRev := mustRev(t, e.Client())
	// Written after the snapshot: gone once it is restored.
	if _, err := e.Client().Put(ctx, "/registry/after", "x"); err != nil {
		t.Fatal(err)
	}

	// A member runs on the data directory: refused.
	if err := Restore(s.Path, cfg.DataDir, restoreMember, restorePeerURL); !errors.Is(err, ErrMemberRunning) {
		t.Fatalf("Restore while the member runs = %v, want ErrMemberRunning", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T, dataDir string) {
		t.Helper()
		c := cfg
		c.DataDir = dataDir
		e := start(t, c)
		if diff := cmp.Diff(want, readKeys(t, e.Client())); diff != "" {
			t.Errorf("keys after restore (-want +got):\n%s", diff)
		}
		if rev := mustRev(t, e.Client()); rev < restoreRevisionBump {
			t.Errorf("revision %d after restore, want it moved past %d", rev, restoreRevisionBump)
		}
		if _, err := e.Client().Get(ctx, "/registry/snap/k000", clientv3.WithRev(oldRev)); !errors.Is(err, rpctypes.ErrCompacted) {
			t.Errorf("Get at the snapshot's revision = %v, want ErrCompacted", err)
		}
		ttl, err := e.Client().TimeToLive(ctx, lease.ID, clientv3.WithAttachedKeys())
		if err != nil || ttl.TTL <= 0 || len(ttl.Keys) != 1 {
			t.Errorf("lease after restore = %+v, %v; want alive with its key", ttl, err)
		}
		// The restored member takes writes.
		if _, err := e.Client().Put(ctx, "/registry/new", "x"); err != nil {
			t.Errorf("Put after restore: %v", err)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("into a new directory", func(t *testing.T) {
		dataDir := filepath.Join(t.TempDir(), "restored", "etcd")
		if err := Restore(s.Path, dataDir, restoreMember, restorePeerURL); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		if info, err := os.Stat(dataDir); err != nil || info.Mode().Perm() != 0o700 {
			t.Errorf("restored directory: %v, %v; want mode 0700", info, err)
		}
		assertOnly(t, filepath.Dir(dataDir), "etcd")
		check(t, dataDir)
	})

	t.Run("over the old directory", func(t *testing.T) {
		if err := Restore(s.Path, cfg.DataDir, restoreMember, restorePeerURL); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		// The old data is kept beside it.
		old, err := filepath.Glob(cfg.DataDir + ".old-*")
		if err != nil || len(old) != 1 {
			t.Fatalf("old data directories %v, %v; want one", old, err)
		}
		if _, err := os.Stat(filepath.Join(old[0], "member", "wal")); err != nil {
			t.Errorf("old data directory: %v", err)
		}
		assertOnly(t, filepath.Dir(cfg.DataDir), "etcd", filepath.Base(old[0]), "tls")
		check(t, cfg.DataDir)
	})
}

func TestRestoreRefuses(t *testing.T) {
	cfg := embeddedConfig(t)
	e := start(t, cfg)
	putKeys(t, e.Client(), 10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Save(ctx, e.Client(), t.TempDir(), "s")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(s.Path)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(t.TempDir(), "corrupt")
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(corrupt, data, 0o600); err != nil {
		t.Fatal(err)
	}
	noHash := filepath.Join(t.TempDir(), "nohash")
	if err := os.WriteFile(noHash, data[:len(data)-32], 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, snapshot, member, peer string
	}{
		{"corrupt snapshot", corrupt, restoreMember, restorePeerURL},
		{"snapshot without its sha256", noHash, restoreMember, restorePeerURL},
		{"missing snapshot", filepath.Join(t.TempDir(), "nope"), restoreMember, restorePeerURL},
		{"no member name", s.Path, "", restorePeerURL},
		{"bad peer URL", s.Path, restoreMember, "127.0.0.1:2380"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Restore(tc.snapshot, cfg.DataDir, tc.member, tc.peer); err == nil {
				t.Fatalf("Restore succeeded; want error")
			} else {
				t.Logf("Restore: %v", err)
			}
			// The data directory is untouched, and nothing is left
			// beside it.
			assertOnly(t, filepath.Dir(cfg.DataDir), "etcd", "tls")
		})
	}
	e = start(t, cfg)
	if got := readKeys(t, e.Client()); len(got) != 10 {
		t.Errorf("%d keys after refused restores, want 10", len(got))
	}
}

func mustRev(t *testing.T, c *clientv3.Client) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, "health", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// assertOnly checks that dir holds exactly the entries named.
func assertOnly(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s holds (-want +got):\n%s", dir, diff)
	}
}
