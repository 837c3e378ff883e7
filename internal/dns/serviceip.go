package dns

import (
	"math/big"
	"net/netip"
)

// ServiceIP is the kube-dns Service's ClusterIP: the 10th address of the
// service CIDR (10.43.0.10 of 10.43.0.0/16), as kubeadm and k3s choose it.
// It returns the zero Addr for a CIDR too small to hold it.
func ServiceIP(serviceCIDR netip.Prefix) netip.Addr {
	base := serviceCIDR.Masked().Addr()
	if bits := base.BitLen() - serviceCIDR.Bits(); bits < 4 {
		return netip.Addr{} // fewer than 16 addresses: .10 is the broadcast or outside
	}
	n := new(big.Int).SetBytes(base.AsSlice())
	n.Add(n, big.NewInt(10))
	b := n.FillBytes(make([]byte, len(base.AsSlice())))
	addr, _ := netip.AddrFromSlice(b)
	return addr
}
