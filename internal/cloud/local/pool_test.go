package local

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustPool(t *testing.T, cidr string) *pool {
	t.Helper()
	p, err := newPool(cidr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPoolRange(t *testing.T) {
	tests := []struct {
		cidr        string
		first, last string
	}{
		{"127.0.100.0/24", "127.0.100.1", "127.0.100.254"},
		{"127.0.100.7/24", "127.0.100.1", "127.0.100.254"}, // masked
		{"10.0.0.0/30", "10.0.0.1", "10.0.0.2"},
		{"10.0.0.4/31", "10.0.0.4", "10.0.0.5"},
		{"10.0.0.9/32", "10.0.0.9", "10.0.0.9"},
		{"fd00::/120", "fd00::1", "fd00::ff"},
	}
	for _, tt := range tests {
		t.Run(tt.cidr, func(t *testing.T) {
			p := mustPool(t, tt.cidr)
			got := [2]string{p.first.String(), p.last.String()}
			if diff := cmp.Diff([2]string{tt.first, tt.last}, got); diff != "" {
				t.Fatalf("range (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := newPool("not-a-cidr"); err == nil {
		t.Fatal("newPool accepted a bad CIDR")
	}
}

func TestPoolAllocate(t *testing.T) {
	type step struct {
		op    string // "alloc", "release", "restore"
		owner string
		want  string // requested / restored address
		got   string // address expected back ("" for none)
		err   error  // sentinel expected
		ok    bool   // restore's result
	}
	tests := []struct {
		name  string
		cidr  string
		steps []step
	}{
		{
			name: "lowest free, stable per owner",
			cidr: "10.0.0.0/29",
			steps: []step{
				{op: "alloc", owner: "a", got: "10.0.0.1"},
				{op: "alloc", owner: "b", got: "10.0.0.2"},
				{op: "alloc", owner: "a", got: "10.0.0.1"},
				{op: "release", owner: "a", got: "10.0.0.1"},
				{op: "alloc", owner: "c", got: "10.0.0.1"},
				{op: "release", owner: "nobody"},
			},
		},
		{
			name: "requested address",
			cidr: "10.0.0.0/29",
			steps: []step{
				{op: "alloc", owner: "a", want: "10.0.0.5", got: "10.0.0.5"},
				{op: "alloc", owner: "b", want: "10.0.0.5", err: ErrAddressInUse},
				{op: "alloc", owner: "b", want: "10.0.0.7", err: ErrNotInPool}, // broadcast
				{op: "alloc", owner: "b", want: "192.168.1.1", err: ErrNotInPool},
				{op: "alloc", owner: "b", got: "10.0.0.1"},
				// b moves to a requested address; its old one is freed.
				{op: "alloc", owner: "b", want: "10.0.0.6", got: "10.0.0.6"},
				{op: "alloc", owner: "c", got: "10.0.0.1"},
				// A failed move keeps what the owner held.
				{op: "alloc", owner: "c", want: "10.0.0.6", err: ErrAddressInUse},
				{op: "alloc", owner: "c", got: "10.0.0.1"},
			},
		},
		{
			name: "exhaustion",
			cidr: "10.0.0.0/30",
			steps: []step{
				{op: "alloc", owner: "a", got: "10.0.0.1"},
				{op: "alloc", owner: "b", got: "10.0.0.2"},
				{op: "alloc", owner: "c", err: ErrPoolExhausted},
				{op: "release", owner: "a", got: "10.0.0.1"},
				{op: "alloc", owner: "c", got: "10.0.0.1"},
			},
		},
		{
			name: "restore",
			cidr: "10.0.0.0/29",
			steps: []step{
				{op: "restore", owner: "a", want: "10.0.0.3", ok: true},
				{op: "restore", owner: "a", want: "10.0.0.3", ok: true},  // idempotent
				{op: "restore", owner: "b", want: "10.0.0.3", ok: false}, // taken
				{op: "restore", owner: "a", want: "10.0.0.4", ok: false}, // a holds one
				{op: "restore", owner: "c", want: "10.1.0.1", ok: false}, // outside
				{op: "alloc", owner: "a", got: "10.0.0.3"},
				{op: "alloc", owner: "b", got: "10.0.0.1"},
				{op: "alloc", owner: "d", got: "10.0.0.2"},
				{op: "alloc", owner: "e", got: "10.0.0.4"}, // skips restored .3
			},
		},
		{
			name: "ipv6",
			cidr: "fd00::/126",
			steps: []step{
				{op: "alloc", owner: "a", got: "fd00::1"},
				{op: "alloc", owner: "b", got: "fd00::2"},
				{op: "alloc", owner: "c", got: "fd00::3"},
				{op: "alloc", owner: "d", err: ErrPoolExhausted},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPool(t, tt.cidr)
			for i, s := range tt.steps {
				var want netip.Addr
				if s.want != "" {
					want = netip.MustParseAddr(s.want)
				}
				var got netip.Addr
				var err error
				switch s.op {
				case "alloc":
					got, err = p.allocate(s.owner, want)
				case "release":
					got, _ = p.release(s.owner)
				case "restore":
					if ok := p.restore(s.owner, want); ok != s.ok {
						t.Fatalf("step %d: restore(%s, %s) = %v, want %v", i, s.owner, s.want, ok, s.ok)
					}
					continue
				}
				if !errors.Is(err, s.err) {
					t.Fatalf("step %d: %s(%s, %q): err %v, want %v", i, s.op, s.owner, s.want, err, s.err)
				}
				gotStr := ""
				if got.IsValid() {
					gotStr = got.String()
				}
				if gotStr != s.got {
					t.Fatalf("step %d: %s(%s, %q) = %q, want %q", i, s.op, s.owner, s.want, gotStr, s.got)
				}
			}
		})
	}
}

// Many owners allocating and releasing at once never share an address.
func TestPoolConcurrent(t *testing.T) {
	p := mustPool(t, "10.0.0.0/24") // 254 addresses
	const owners = 200
	got := make([]netip.Addr, owners)
	var wg sync.WaitGroup
	for i := range owners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("ns/svc-%d", i)
			// Churn: take, give back, take again.
			if _, err := p.allocate(owner, netip.Addr{}); err != nil {
				t.Error(err)
				return
			}
			p.release(owner)
			a, err := p.allocate(owner, netip.Addr{})
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = a
		}()
	}
	wg.Wait()
	seen := map[netip.Addr]int{}
	for i, a := range got {
		if j, dup := seen[a]; dup {
			t.Fatalf("owners %d and %d both hold %s", i, j, a)
		}
		seen[a] = i
	}
	if n := p.inUse(); n != owners {
		t.Fatalf("inUse %d, want %d", n, owners)
	}
}
