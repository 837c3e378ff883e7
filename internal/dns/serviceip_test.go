package dns

import (
	"net/netip"
	"testing"
)

func TestServiceIP(t *testing.T) {
	tests := []struct{ cidr, want string }{
		{"10.43.0.0/16", "10.43.0.10"},
		{"10.96.0.0/12", "10.96.0.10"},
		{"10.43.5.7/16", "10.43.0.10"}, // masked first
		{"192.168.1.0/28", "192.168.1.10"},
		{"fd00:43::/112", "fd00:43::a"},
		{"10.0.0.0/29", "invalid IP"}, // 8 addresses: no 10th
	}
	for _, tt := range tests {
		if got := ServiceIP(netip.MustParsePrefix(tt.cidr)).String(); got != tt.want {
			t.Errorf("ServiceIP(%s) = %s, want %s", tt.cidr, got, tt.want)
		}
	}
}

func TestReverseAddr(t *testing.T) {
	tests := []struct {
		name string
		want string // "" when not an address
	}{
		{"10.0.43.10.in-addr.arpa.", "10.43.0.10"},
		{"10.0.43.10.IN-ADDR.ARPA.", "10.43.0.10"},
		{"0.43.10.in-addr.arpa.", ""},
		{"256.0.43.10.in-addr.arpa.", ""},
		{"01.0.43.10.in-addr.arpa.", ""},
		{"0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa.", "fd00:43::20"},
		{"2.0.0.0.ip6.arpa.", ""},
		{"example.org.", ""},
	}
	for _, tt := range tests {
		ip, ok := reverseAddr(tt.name)
		got := ""
		if ok {
			got = ip.String()
		}
		if got != tt.want {
			t.Errorf("reverseAddr(%s) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
