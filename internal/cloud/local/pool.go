package local

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// Sentinels callers branch on.
var (
	// ErrPoolExhausted: every address of the pool is held.
	ErrPoolExhausted = errors.New("no free address in the load-balancer pool")
	// ErrNotInPool: a requested address lies outside the pool.
	ErrNotInPool = errors.New("address is not in the load-balancer pool")
	// ErrAddressInUse: a requested address is held by another owner.
	ErrAddressInUse = errors.New("address is already assigned")
)

// pool hands out the addresses of one prefix, each to at most one owner
// (a "namespace/name" key), and each owner at most one address. It is safe
// for concurrent use.
//
// An IPv4 prefix of /30 or wider keeps its network and broadcast
// addresses back; an IPv6 prefix keeps its first (subnet-router anycast)
// address back.
type pool struct {
	prefix      netip.Prefix
	first, last netip.Addr

	mu      sync.Mutex
	owner   map[netip.Addr]string // address -> owner
	address map[string]netip.Addr // owner -> address
}

// newPool returns an empty pool over cidr ("127.0.100.0/24").
func newPool(cidr string) (*pool, error) {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("load-balancer pool %q: %w", cidr, err)
	}
	prefix = prefix.Masked()
	first, last := prefix.Addr(), lastAddr(prefix)
	switch {
	case prefix.Addr().Is4() && prefix.Bits() <= 30:
		first, last = first.Next(), last.Prev()
	case prefix.Addr().Is6() && prefix.Bits() <= 126:
		first = first.Next()
	}
	return &pool{
		prefix:  prefix,
		first:   first,
		last:    last,
		owner:   map[netip.Addr]string{},
		address: map[string]netip.Addr{},
	}, nil
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// contains reports whether a is an address the pool hands out.
func (p *pool) contains(a netip.Addr) bool {
	return a.IsValid() && p.prefix.Contains(a) && a.Compare(p.first) >= 0 && a.Compare(p.last) <= 0
}

// allocate returns owner's address. With want valid, the address is want:
// owner keeps it if it holds it, moves to it if it is free (releasing the
// one it held), and fails with ErrNotInPool or ErrAddressInUse otherwise,
// keeping what it held. With want invalid, owner keeps the address it
// holds, or else gets the lowest free one (ErrPoolExhausted if none).
func (p *pool) allocate(owner string, want netip.Addr) (netip.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	held, holds := p.address[owner]
	if want.IsValid() {
		want = want.Unmap()
		switch {
		case holds && held == want:
			return held, nil
		case !p.contains(want):
			return netip.Addr{}, fmt.Errorf("%s (pool %s): %w", want, p.prefix, ErrNotInPool)
		}
		if other, taken := p.owner[want]; taken {
			return netip.Addr{}, fmt.Errorf("%s is held by service %s: %w", want, other, ErrAddressInUse)
		}
		if holds {
			delete(p.owner, held)
		}
		p.take(owner, want)
		return want, nil
	}
	if holds {
		return held, nil
	}
	for a := p.first; p.contains(a); a = a.Next() {
		if _, taken := p.owner[a]; !taken {
			p.take(owner, a)
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("all %d addresses of %s are assigned (widen --lb-pool or delete a LoadBalancer Service): %w", len(p.owner), p.prefix, ErrPoolExhausted)
}

// take records a as owner's; p.mu is held.
func (p *pool) take(owner string, a netip.Addr) {
	p.owner[a] = owner
	p.address[owner] = a
}

// restore records that owner holds a, which it was given before a
// restart. It reports false, changing nothing, if a is not in the pool,
// is held by another owner, or owner already holds a different address.
func (p *pool) restore(owner string, a netip.Addr) bool {
	a = a.Unmap()
	if !p.contains(a) {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if held, holds := p.address[owner]; holds {
		return held == a
	}
	if _, taken := p.owner[a]; taken {
		return false
	}
	p.take(owner, a)
	return true
}

// lookup returns the address owner holds.
func (p *pool) lookup(owner string) (netip.Addr, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.address[owner]
	return a, ok
}

// release frees the address owner holds, if any, and returns it.
func (p *pool) release(owner string) (netip.Addr, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.address[owner]
	if ok {
		delete(p.address, owner)
		delete(p.owner, a)
	}
	return a, ok
}

// inUse is the number of addresses held.
func (p *pool) inUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.owner)
}
