package etcd

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// clusterMember is the Config of a clustered member called name in a
// fresh directory, sharing base's certificates, on free loopback ports.
func clusterMember(t *testing.T, base Config, name string, join ...string) Config {
	t.Helper()
	ports, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	c := base
	c.DataDir = filepath.Join(t.TempDir(), "etcd")
	c.Member = MemberConfig{Name: name, IP: "127.0.0.1", ClientPort: ports[0], PeerPort: ports[1], Join: join}
	return c
}

func clientURLOf(c Config) string {
	u := c.Member.clientURL(c.Member.IP)
	return u.String()
}

// voters returns the names of the voting members, sorted, and fails the
// test on learners.
func voters(t *testing.T, e *Etcd) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ms, err := e.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		if m.IsLearner {
			t.Errorf("member %s is still a learner", m.Name)
		}
		names = append(names, m.Name)
	}
	slices.Sort(names)
	return names
}

// putWithin writes key through e, retrying while the cluster elects a
// leader, and returns how long the write took to succeed.
func putWithin(t *testing.T, e *Etcd, key string, bound time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := e.Client().Put(ctx, key, "v")
		cancel()
		if err == nil {
			return time.Since(began)
		}
		if time.Since(began) > bound {
			t.Fatalf("put %s: no success within %v: %v", key, bound, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCluster runs three members the way three servers do: one started
// alone, two joining it as learners and promoted; the cluster stays
// writable when one stops, a removed member's name can join again, and a
// restarted member comes back with its data.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three etcd members")
	}
	base := embeddedConfig(t)
	aCfg := clusterMember(t, base, "a")
	a := start(t, aCfg)
	bCfg := clusterMember(t, base, "b", clientURLOf(aCfg))
	b := start(t, bCfg)
	cCfg := clusterMember(t, base, "c", clientURLOf(aCfg), clientURLOf(bCfg))
	c := start(t, cCfg)
	if got := voters(t, c); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("voters %v, want a, b, c", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.Client().Put(ctx, "/k", "from-a"); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Client().Get(ctx, "/k"); err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "from-a" {
		t.Fatalf("read through c: %v, %v", r, err)
	}

	// A second member with a taken name is refused before it starts.
	dup := clusterMember(t, base, "b", clientURLOf(aCfg))
	if _, err := Start(ctx, dup); err == nil || !strings.Contains(err.Error(), "named b already exists") {
		t.Fatalf("joining as a second b: %v, want 'already exists'", err)
	}

	// One of three stops: the other two keep a quorum.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("write after a stopped: %v", putWithin(t, b, "/after-a", 10*time.Second))

	// Removed, its name joins again with a fresh data dir.
	if err := b.RemoveMember(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveMember(ctx, "a"); !errors.Is(err, ErrNoSuchMember) {
		t.Errorf("removing a twice: %v, want ErrNoSuchMember", err)
	}
	a2 := start(t, clusterMember(t, base, "a", clientURLOf(bCfg)))
	if got := voters(t, a2); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("after a rejoined: voters %v", got)
	}
	if r, err := a2.Client().Get(ctx, "/after-a"); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("rejoined a reads /after-a: %v, %v", r, err)
	}

	// A restarted member keeps its data and membership; Join is ignored.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		putWithin(t, b, fmt.Sprintf("/while-c-down/%d", i), 10*time.Second)
	}
	c2 := start(t, cCfg)
	if got := voters(t, c2); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("after c restarted: voters %v", got)
	}
	r, err := c2.Client().Get(ctx, "/while-c-down/", clientv3.WithPrefix())
	if err != nil || len(r.Kvs) != 20 {
		t.Fatalf("restarted c reads %d of 20 keys written while it was down: %v", len(r.Kvs), err)
	}
}
