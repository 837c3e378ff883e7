package etcd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// putKeys writes n keys under /registry/snap/ and returns them.
func putKeys(t *testing.T, c *clientv3.Client, n int) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := map[string]string{}
	for i := range n {
		k, v := fmt.Sprintf("/registry/snap/k%03d", i), strings.Repeat("v", i)
		if _, err := c.Put(ctx, k, v); err != nil {
			t.Fatalf("Put: %v", err)
		}
		want[k] = v
	}
	return want
}

// readKeys returns every key under /registry/ and its value.
func readKeys(t *testing.T, c *clientv3.Client) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, "/registry/", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	return got
}

func TestSnapshotSave(t *testing.T) {
	cfg := embeddedConfig(t)
	e := start(t, cfg)
	putKeys(t, e.Client(), 50)

	// The API server's in-process client, and a client over gRPC with
	// the server's client certificate, as `skiff etcd-snapshot save`.
	cc := cfg
	cc.ClientCAFile = cfg.TrustedCAFile
	grpcClient, err := newClient(cc, e.Endpoints(), new(atomic.Bool))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { grpcClient.Close() })
	clients := []struct {
		name   string
		client *clientv3.Client
	}{
		{"in process", e.Client()},
		{"grpc", grpcClient},
	}
	for _, tc := range clients {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "snapshots")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := Save(ctx, tc.client, dir, "etcd-snapshot-host")
			if err != nil {
				t.Fatalf("Save: %v", err)
			}
			if !regexp.MustCompile(`^etcd-snapshot-host-[0-9]+$`).MatchString(s.Name) {
				t.Errorf("name %q, want etcd-snapshot-host-<unix seconds>", s.Name)
			}
			if s.Path != filepath.Join(dir, s.Name) {
				t.Errorf("path %q, want %q", s.Path, filepath.Join(dir, s.Name))
			}
			if since := time.Since(s.Created); since < 0 || since > time.Minute {
				t.Errorf("created %v, %v ago", s.Created, since)
			}
			info, err := os.Stat(s.Path)
			if err != nil {
				t.Fatal(err)
			}
			if info.Size() != s.Size || s.Size%512 != sha256.Size {
				t.Errorf("size %d (file %d), want a multiple of 512 plus the sha256", s.Size, info.Size())
			}
			if m := info.Mode().Perm(); m != 0o600 {
				t.Errorf("file mode %v, want 0600", m)
			}
			dinfo, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if m := dinfo.Mode().Perm(); m != 0o700 {
				t.Errorf("directory mode %v, want 0700", m)
			}
			if err := checkDatabase(s.Path); err != nil {
				t.Errorf("checkDatabase: %v", err)
			}
			// The file ends in the sha256 of what precedes it.
			data, err := os.ReadFile(s.Path)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data[:len(data)-sha256.Size])
			if !bytes.Equal(sum[:], data[len(data)-sha256.Size:]) {
				t.Errorf("file does not end in its sha256")
			}
			list, err := List(dir)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]Snapshot{s}, list); diff != "" {
				t.Errorf("List (-want +got):\n%s", diff)
			}
			// A second snapshot in the same second is refused, not
			// written over the first.
			if s2, err := Save(ctx, tc.client, dir, "etcd-snapshot-host"); err == nil {
				if s2.Name == s.Name {
					t.Errorf("second Save wrote over %s", s.Name)
				}
			} else if !errors.Is(err, fs.ErrExist) {
				t.Errorf("second Save: %v", err)
			}
			assertNoTempFiles(t, dir)
		})
	}
}

func TestSnapshotSaveFailureLeavesNothing(t *testing.T) {
	e := start(t, embeddedConfig(t))
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Save(ctx, e.Client(), dir, "canceled"); err == nil {
		t.Fatalf("Save with a canceled context succeeded")
	}
	for _, name := range []string{"", ".", "..", "a/b", "../x", `a\b`, ".hidden"} {
		if _, err := Save(context.Background(), e.Client(), dir, name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Save(%q) = %v, want ErrInvalidName", name, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("directory holds %v after failed saves, want nothing", entries)
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}

// writeFiles creates empty files of the given names in dir.
func writeFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func names(list []Snapshot) []string {
	var out []string
	for _, s := range list {
		out = append(out, s.Name)
	}
	return out
}

func TestSnapshotList(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "b-300", "a-200", "c-100", ".a-50.part-1", "a-400")
	if err := os.Mkdir(filepath.Join(dir, "sub-10"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A file without a time in its name is placed by its modification
	// time.
	writeFiles(t, dir, "by-hand")
	if err := os.Chtimes(filepath.Join(dir, "by-hand"), time.Unix(250, 0), time.Unix(250, 0)); err != nil {
		t.Fatal(err)
	}
	list, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"c-100", "a-200", "by-hand", "b-300", "a-400"}, names(list)); diff != "" {
		t.Errorf("List order (-want +got):\n%s", diff)
	}
	for _, s := range list {
		if s.Size != int64(len(s.Name)) || s.Path != filepath.Join(dir, s.Name) {
			t.Errorf("%s: size %d, path %s", s.Name, s.Size, s.Path)
		}
	}
	if got := list[0].Created; !got.Equal(time.Unix(100, 0)) {
		t.Errorf("c-100 created %v, want unix 100", got)
	}

	list, err = List(filepath.Join(dir, "missing"))
	if err != nil || len(list) != 0 {
		t.Errorf("List of a missing directory = %v, %v; want nothing", list, err)
	}
}

func TestSnapshotPrune(t *testing.T) {
	tests := []struct {
		name       string
		files      []string
		prefix     string
		keep       int
		wantPruned []string
		wantLeft   []string
	}{
		{
			name:       "keeps the newest of the series",
			files:      []string{"s-100", "s-400", "s-200", "s-300"},
			prefix:     "s",
			keep:       2,
			wantPruned: []string{"s-100", "s-200"},
			wantLeft:   []string{"s-300", "s-400"},
		},
		{
			name:     "fewer than keep",
			files:    []string{"s-100", "s-200"},
			prefix:   "s",
			keep:     5,
			wantLeft: []string{"s-100", "s-200"},
		},
		{
			name: "other series and files are left alone",
			files: []string{
				"etcd-snapshot-a-100", "etcd-snapshot-a-200", "etcd-snapshot-a-300",
				"etcd-snapshot-a2-50", "on-demand-a-60", "etcd-snapshot-a-x", "etcd-snapshot-a",
			},
			prefix:     "etcd-snapshot-a",
			keep:       1,
			wantPruned: []string{"etcd-snapshot-a-100", "etcd-snapshot-a-200"},
			wantLeft:   []string{"etcd-snapshot-a2-50", "on-demand-a-60", "etcd-snapshot-a-300", "etcd-snapshot-a", "etcd-snapshot-a-x"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files...)
			// Files without a time sort after the others.
			for _, n := range []string{"etcd-snapshot-a", "etcd-snapshot-a-x"} {
				_ = os.Chtimes(filepath.Join(dir, n), time.Unix(1000, 0), time.Unix(1000, 0))
			}
			pruned, err := Prune(dir, tc.prefix, tc.keep)
			if err != nil {
				t.Fatalf("Prune: %v", err)
			}
			if diff := cmp.Diff(tc.wantPruned, pruned); diff != "" {
				t.Errorf("pruned (-want +got):\n%s", diff)
			}
			list, err := List(dir)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantLeft, names(list)); diff != "" {
				t.Errorf("left (-want +got):\n%s", diff)
			}
		})
	}

	dir := t.TempDir()
	writeFiles(t, dir, "s-1")
	for _, keep := range []int{0, -1} {
		if _, err := Prune(dir, "s", keep); err == nil {
			t.Errorf("Prune keep %d succeeded; want error", keep)
		}
	}
	if _, err := Prune(dir, "../s", 1); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Prune of prefix ../s = %v, want ErrInvalidName", err)
	}
}

func TestSnapshotDelete(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "snapshots")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, parent, "outside")
	writeFiles(t, dir, "a-1", "b-2", "c-3")

	for _, bad := range []string{"", ".", "..", "../outside", "sub/a-1", `..\outside`, "a..b"} {
		// A bad name refuses the whole call: a-1 stays.
		if err := Delete(dir, "a-1", bad); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
	if _, err := os.Stat(filepath.Join(parent, "outside")); err != nil {
		t.Errorf("file outside the directory: %v", err)
	}

	if err := Delete(dir, "a-1", "missing-9", "c-3"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Delete with a missing name = %v, want fs.ErrNotExist", err)
	}
	list, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b-2"}, names(list)); diff != "" {
		t.Errorf("left (-want +got):\n%s", diff)
	}
	if err := Delete(dir, "b-2"); err != nil {
		t.Errorf("Delete: %v", err)
	}
}

func TestChecksumWriter(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 300)
	sum := sha256.Sum256(body)
	good := append(append([]byte(nil), body...), sum[:]...)
	bad := append([]byte(nil), good...)
	bad[10] ^= 1
	for _, chunk := range []int{1, 7, 31, 32, 33, 1000, len(good)} {
		for _, tc := range []struct {
			name string
			data []byte
			want bool
		}{
			{"good", good, true},
			{"corrupt", bad, false},
			{"truncated", good[:len(good)-1], false},
			{"short", good[:10], false},
		} {
			w := &checksumWriter{h: sha256.New()}
			for i := 0; i < len(tc.data); i += chunk {
				_, _ = w.Write(tc.data[i:min(i+chunk, len(tc.data))])
			}
			if got := w.ok(); got != tc.want {
				t.Errorf("%s in chunks of %d: ok() = %v, want %v", tc.name, chunk, got, tc.want)
			}
		}
	}
}

func TestWriteClientURL(t *testing.T) {
	dataDir := t.TempDir()
	memberDir := filepath.Join(dataDir, "etcd")
	if err := os.Mkdir(memberDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"https://127.0.0.1:41234", "https://10.0.0.1:2379"} {
		if err := writeClientURL(memberDir, u); err != nil {
			t.Fatalf("writeClientURL: %v", err)
		}
		got, err := os.ReadFile(ClientURLFile(dataDir))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != u+"\n" {
			t.Errorf("client URL file holds %q, want %q", got, u+"\n")
		}
	}
	entries, err := os.ReadDir(memberDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("member directory holds %v, want only %s", entries, clientURLFileName)
	}
}
