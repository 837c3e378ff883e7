package admission

import (
	"net/netip"
	"testing"
)

func TestFreeIPPrefersAboveTheStaticBand(t *testing.T) {
	a := &ServiceAllocator{CIDR: netip.MustParsePrefix("10.43.0.0/24")}
	used := map[string]bool{}
	// The 254 usable addresses but the first: the band (.2-.15) comes last.
	for i := 0; i < 253; i++ {
		ip, ok := a.freeIP(used)
		if !ok {
			t.Fatalf("allocation %d: range full", i)
		}
		last := int(ip.As4()[3])
		if i < 253-14 && last < 16 {
			t.Fatalf("allocation %d took %s from the static band while others were free", i, ip)
		}
		if last < 2 || last == 255 || used["ip:"+ip.String()] {
			t.Fatalf("allocation %d: bad or repeated address %s", i, ip)
		}
		used["ip:"+ip.String()] = true
	}
	if ip, ok := a.freeIP(used); ok {
		t.Fatalf("full range still gave %s", ip)
	}

	small := &ServiceAllocator{CIDR: netip.MustParsePrefix("10.43.0.0/29")}
	if ip, ok := small.freeIP(map[string]bool{}); !ok || ip.As4()[3] < 2 || ip.As4()[3] > 6 {
		t.Fatalf("a /29 gave %s, %v", ip, ok)
	}
}
