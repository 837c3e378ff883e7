package nodeipam

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"sync"
)

// ErrCIDRExhausted is returned by Allocate when every subnet of the
// cluster range is taken.
var ErrCIDRExhausted = errors.New("cluster CIDR range is exhausted")

// maxSubnetBits bounds the bitmap: a cluster range may hold at most 2^24
// node subnets (2 MiB of bitmap), far beyond any real cluster.
const maxSubnetBits = 24

// cidrSet hands out the fixed-size subnets of one cluster range, tracked
// in a bitmap (one bit per subnet), so that allocating and releasing stay
// cheap at thousands of nodes. It is safe for concurrent use.
//
// Allocation continues from the subnet after the last one handed out and
// wraps around (upstream's nextCandidate), so a released range is reused
// only after the others: routes to a deleted node have time to go away.
type cidrSet struct {
	mu       sync.Mutex
	base     netip.Prefix // the cluster range, masked
	maskSize int          // the prefix length of each subnet
	count    int          // number of subnets
	used     []uint64     // bitmap, bit i = subnet i taken
	inUse    int
	next     int
}

// newCIDRSet returns the set of /maskSize subnets of cluster.
func newCIDRSet(cluster string, maskSize int) (*cidrSet, error) {
	p, err := netip.ParsePrefix(cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster CIDR %q: %w", cluster, err)
	}
	p = p.Masked()
	if maskSize < p.Bits() || maskSize > p.Addr().BitLen() {
		return nil, fmt.Errorf("node mask size %d does not fit cluster CIDR %s", maskSize, p)
	}
	if maskSize-p.Bits() > maxSubnetBits {
		return nil, fmt.Errorf("node mask size %d cuts cluster CIDR %s into more than 2^%d subnets", maskSize, p, maxSubnetBits)
	}
	n := 1 << (maskSize - p.Bits())
	return &cidrSet{base: p, maskSize: maskSize, count: n, used: make([]uint64, (n+63)/64)}, nil
}

// subnet returns the i-th subnet.
func (s *cidrSet) subnet(i int) netip.Prefix {
	b := s.base.Addr().AsSlice()
	v := new(big.Int).SetBytes(b)
	off := new(big.Int).Lsh(big.NewInt(int64(i)), uint(s.base.Addr().BitLen()-s.maskSize))
	v.Add(v, off)
	out := make([]byte, len(b))
	v.FillBytes(out)
	addr, _ := netip.AddrFromSlice(out)
	return netip.PrefixFrom(addr, s.maskSize)
}

// index returns the subnet number of cidr, or false when cidr is not
// exactly one of this set's subnets.
func (s *cidrSet) index(cidr string) (int, bool) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || p.Bits() != s.maskSize || p.Masked() != p || !s.base.Contains(p.Addr()) {
		return 0, false
	}
	a := new(big.Int).SetBytes(p.Addr().AsSlice())
	b := new(big.Int).SetBytes(s.base.Addr().AsSlice())
	a.Sub(a, b)
	a.Rsh(a, uint(s.base.Addr().BitLen()-s.maskSize))
	return int(a.Int64()), true
}

func (s *cidrSet) isSet(i int) bool { return s.used[i/64]&(1<<(i%64)) != 0 }

// Allocate takes the next free subnet.
func (s *cidrSet) Allocate() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inUse >= s.count {
		return "", ErrCIDRExhausted
	}
	for k := 0; k < s.count; k++ {
		i := (s.next + k) % s.count
		if w := s.used[i/64]; w == ^uint64(0) && i%64 == 0 {
			k += 63 // a full word: skip it
			continue
		}
		if !s.isSet(i) {
			s.used[i/64] |= 1 << (i % 64)
			s.inUse++
			s.next = (i + 1) % s.count
			return s.subnet(i).String(), nil
		}
	}
	return "", ErrCIDRExhausted
}

// Occupy marks cidr as taken. It reports false when cidr is not one of
// this set's subnets (a podCIDR set by hand outside the cluster range).
func (s *cidrSet) Occupy(cidr string) bool {
	i, ok := s.index(cidr)
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.isSet(i) {
		s.used[i/64] |= 1 << (i % 64)
		s.inUse++
	}
	return true
}

// Release frees cidr; releasing a free or foreign range does nothing.
func (s *cidrSet) Release(cidr string) {
	i, ok := s.index(cidr)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isSet(i) {
		s.used[i/64] &^= 1 << (i % 64)
		s.inUse--
	}
}

// InUse is the number of subnets taken.
func (s *cidrSet) InUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inUse
}
