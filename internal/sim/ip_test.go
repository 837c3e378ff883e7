package sim

import (
	"net/netip"
	"testing"
)

func TestNodeIP(t *testing.T) {
	for _, tc := range []struct {
		index int
		want  string
	}{
		{0, "127.0.0.2"},
		{1, "127.0.0.3"},
		{253, "127.0.0.255"},
		{254, "127.0.1.0"},
		{4999, "127.0.19.137"},
		{-1, "127.0.0.2"},
	} {
		if got := nodeIP(tc.index); got != tc.want {
			t.Errorf("nodeIP(%d) = %s, want %s", tc.index, got, tc.want)
		}
	}
}

func TestNodeIndex(t *testing.T) {
	for _, index := range []int{0, 1, 253, 254, 4999, nodeIPCount - 1} {
		a := netip.MustParseAddr(nodeIP(index))
		if got, ok := nodeIndex(a); !ok || got != index {
			t.Errorf("nodeIndex(%s) = %d, %v; want %d, true", a, got, ok, index)
		}
		mapped := netip.AddrFrom16(a.As16())
		if got, ok := nodeIndex(mapped); !ok || got != index {
			t.Errorf("nodeIndex(%s) = %d, %v; want %d, true", mapped, got, ok, index)
		}
	}
	if got, ok := nodeIndex(netip.MustParseAddr(nodeIP(nodeIPCount))); !ok || got != 0 {
		t.Errorf("nodeIndex of a wrapped index = %d, %v; want 0, true", got, ok)
	}
	for _, s := range []string{"127.0.0.1", "127.0.0.0", "126.255.255.255", "128.0.0.0", "10.0.0.2", "::1", "fd00::2"} {
		if got, ok := nodeIndex(netip.MustParseAddr(s)); ok {
			t.Errorf("nodeIndex(%s) = %d, true; want false", s, got)
		}
	}
	if _, ok := nodeIndex(netip.Addr{}); ok {
		t.Error("nodeIndex(zero Addr) = true")
	}
}

func TestPodIPInCIDR(t *testing.T) {
	for _, tc := range []struct {
		cidr    string
		n       uint64
		want    string
		wantErr bool
	}{
		{cidr: "10.42.3.0/24", n: 0, want: "10.42.3.2"},
		{cidr: "10.42.3.0/24", n: 252, want: "10.42.3.254"},
		{cidr: "10.42.3.0/24", n: 253, want: "10.42.3.2"}, // wraps before broadcast
		{cidr: "10.42.3.7/24", n: 1, want: "10.42.3.3"},   // host bits masked
		{cidr: "10.42.0.0/16", n: 300, want: "10.42.1.46"},
		{cidr: "fd00:10::/64", n: 0, want: "fd00:10::2"},
		{cidr: "fd00:10::/64", n: 255, want: "fd00:10::101"},
		{cidr: "10.0.0.0/31", wantErr: true},
		{cidr: "10.0.0.0/30", n: 5, want: "10.0.0.2"},
		{cidr: "nonsense", wantErr: true},
		{cidr: "", wantErr: true},
	} {
		got, err := podIPInCIDR(tc.cidr, tc.n)
		if (err != nil) != tc.wantErr {
			t.Errorf("podIPInCIDR(%q, %d) error = %v, wantErr %v", tc.cidr, tc.n, err, tc.wantErr)
			continue
		}
		if got != tc.want {
			t.Errorf("podIPInCIDR(%q, %d) = %q, want %q", tc.cidr, tc.n, got, tc.want)
		}
	}
}

func TestFallbackPodIP(t *testing.T) {
	seen := map[string]bool{}
	for n := range uint64(1000) {
		ip := fallbackPodIP(n)
		if seen[ip] {
			t.Fatalf("fallbackPodIP(%d) = %s repeats", n, ip)
		}
		seen[ip] = true
	}
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "10.128.0.1"},
		{255, "10.128.1.0"},
		{1<<23 - 3, "10.255.255.254"},
		{1<<23 - 2, "10.128.0.1"},
	} {
		if got := fallbackPodIP(tc.n); got != tc.want {
			t.Errorf("fallbackPodIP(%d) = %s, want %s", tc.n, got, tc.want)
		}
	}
}
