package nodeipam

import (
	"errors"
	"fmt"
	"testing"
)

func TestNewCIDRSet(t *testing.T) {
	for _, tc := range []struct {
		cidr  string
		mask  int
		count int
		ok    bool
	}{
		{"10.42.0.0/16", 24, 256, true},
		{"10.42.7.9/16", 24, 256, true}, // host bits are masked off
		{"10.42.0.0/24", 24, 1, true},
		{"10.42.0.0/24", 16, 0, false},
		{"10.42.0.0/16", 33, 0, false},
		{"fd00::/48", 64, 65536, true},
		{"fd00::/8", 64, 0, false}, // too many subnets
		{"bogus", 24, 0, false},
	} {
		t.Run(fmt.Sprintf("%s_%d", tc.cidr, tc.mask), func(t *testing.T) {
			s, err := newCIDRSet(tc.cidr, tc.mask)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err == nil && s.count != tc.count {
				t.Fatalf("count = %d, want %d", s.count, tc.count)
			}
		})
	}
}

func TestCIDRSetAllocate(t *testing.T) {
	s, err := newCIDRSet("10.42.0.0/22", 24)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 4 {
		c, err := s.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	want := []string{"10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24", "10.42.3.0/24"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	if _, err := s.Allocate(); !errors.Is(err, ErrCIDRExhausted) {
		t.Fatalf("fifth allocation: err = %v, want exhausted", err)
	}
	s.Release("10.42.1.0/24")
	s.Release("10.42.1.0/24") // twice: no effect
	s.Release("10.43.1.0/24") // foreign: no effect
	if s.InUse() != 3 {
		t.Fatalf("in use = %d, want 3", s.InUse())
	}
	if c, err := s.Allocate(); err != nil || c != "10.42.1.0/24" {
		t.Fatalf("after release: %q %v, want 10.42.1.0/24", c, err)
	}
}

func TestCIDRSetOccupy(t *testing.T) {
	s, _ := newCIDRSet("10.42.0.0/16", 24)
	for _, tc := range []struct {
		cidr string
		ok   bool
	}{
		{"10.42.0.0/24", true},
		{"10.42.255.0/24", true},
		{"10.42.3.0/25", false}, // wrong size
		{"10.42.3.7/24", false}, // not a subnet boundary
		{"10.43.0.0/24", false}, // outside
		{"fd00::/24", false},    // other family
		{"nonsense", false},
	} {
		if got := s.Occupy(tc.cidr); got != tc.ok {
			t.Errorf("Occupy(%q) = %v, want %v", tc.cidr, got, tc.ok)
		}
	}
	c, err := s.Allocate()
	if err != nil || c != "10.42.1.0/24" {
		t.Fatalf("Allocate = %q %v, want 10.42.1.0/24 (0 taken)", c, err)
	}
}

func TestCIDRSetIPv6(t *testing.T) {
	s, _ := newCIDRSet("fd00:10::/56", 64)
	s.Occupy("fd00:10::/64")
	c, err := s.Allocate()
	if err != nil || c != "fd00:10:0:1::/64" {
		t.Fatalf("Allocate = %q %v", c, err)
	}
}

// 5,000 nodes allocate in well under a second (a bitmap, not a scan of
// strings); the benchmark shows it.
func BenchmarkAllocate5000(b *testing.B) {
	for b.Loop() {
		s, _ := newCIDRSet("10.0.0.0/8", 24)
		for range 5000 {
			if _, err := s.Allocate(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
