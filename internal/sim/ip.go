package sim

import (
	"fmt"
	"net/netip"
)

// Simulated addresses are never real ones: nodes get loopback addresses,
// pods an address of their node's podCIDR or, without one, of 10.128.0.0/9
// (clear of skiff's default cluster 10.42.0.0/16 and service 10.43.0.0/16
// ranges).
var (
	nodeIPBase     = netip.MustParseAddr("127.0.0.2")
	fallbackPodNet = netip.MustParsePrefix("10.128.0.0/9")
)

// nodeIPCount is how many node addresses there are before nodeIP wraps.
const nodeIPCount = 1<<24 - 2

// nodeIP is node index's InternalIP: 127.0.0.2, 127.0.0.3, ... (127.0.0.1
// is left to the real loopback). Indexes beyond 127/8 wrap.
func nodeIP(index int) string {
	return addToAddr(nodeIPBase, uint64(max(index, 0))%nodeIPCount).String()
}

// nodeIndex is the inverse of nodeIP: the smallest node index whose
// InternalIP is a (an IPv4-mapped IPv6 form included), and false for an
// address nodeIP never gives (127.0.0.1, anything outside 127/8).
func nodeIndex(a netip.Addr) (int, bool) {
	a = a.Unmap()
	if !a.Is4() {
		return 0, false
	}
	b, base := a.As4(), nodeIPBase.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v0 := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	if v < v0 || v-v0 >= nodeIPCount {
		return 0, false
	}
	return int(v - v0), true
}

// podIPInCIDR is the n-th pod address of cidr: host addresses from the
// second (the first is conventionally the node's bridge), wrapping
// around. It fails on an invalid CIDR or one too small to hold a pod.
func podIPInCIDR(cidr string, n uint64) (string, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return "", fmt.Errorf("pod CIDR %q: %w", cidr, err)
	}
	p = p.Masked()
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits < 2 {
		return "", fmt.Errorf("pod CIDR %q: too small", cidr)
	}
	// Skip the network address and .1, and for IPv4 the broadcast
	// address; cap the range so that the arithmetic stays in uint64.
	size := uint64(1) << min(hostBits, 62)
	usable := size - 2
	if p.Addr().Is4() {
		usable--
	}
	if usable == 0 {
		return "", fmt.Errorf("pod CIDR %q: too small", cidr)
	}
	return addToAddr(p.Addr(), 2+n%usable).String(), nil
}

// fallbackPodIP is the n-th address of 10.128.0.0/9, for nodes without a
// podCIDR, skipping the network address.
func fallbackPodIP(n uint64) string {
	const usable = 1<<23 - 2
	return addToAddr(fallbackPodNet.Addr(), 1+n%usable).String()
}

// addToAddr adds off to a, byte by byte with carry (no overflow checks:
// callers keep off inside their prefix).
func addToAddr(a netip.Addr, off uint64) netip.Addr {
	b := a.AsSlice()
	for i := len(b) - 1; i >= 0 && off > 0; i-- {
		sum := uint64(b[i]) + off&0xff
		b[i] = byte(sum)
		off = off>>8 + sum>>8
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}
