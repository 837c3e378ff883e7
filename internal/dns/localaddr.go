package dns

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
)

// EnsureLocalAddress makes cidr an address of the dummy interface ifname,
// creating the interface (see addLink) and bringing it up if needed, so that the node
// accepts packets for the cluster DNS address ("10.43.0.10/32"; a bare
// address means a single-address prefix). Pods reach it through their
// gateway, the host. It is idempotent. It runs `ip`, and needs
// CAP_NET_ADMIN.
func EnsureLocalAddress(ifname, cidr string) error {
	prefix, err := parseLocalPrefix(cidr)
	if err != nil {
		return err
	}
	if _, err := net.InterfaceByName(ifname); err != nil {
		if err := addLink(ifname); err != nil {
			return err
		}
	}
	if out, err := exec.Command("ip", "link", "set", ifname, "up").CombinedOutput(); err != nil {
		return fmt.Errorf("bringing up %s: %w: %s", ifname, err, strings.TrimSpace(string(out)))
	}
	if out, err := exec.Command("ip", "addr", "replace", prefix.String(), "dev", ifname).CombinedOutput(); err != nil {
		return fmt.Errorf("adding %s to %s: %w: %s", prefix, ifname, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// addLink creates ifname as a dummy interface or, on a kernel built
// without the dummy driver (some VM kernels), as a bridge without ports:
// it holds a local address just as well, and packets for that address are
// delivered locally whatever the bridge's carrier.
func addLink(ifname string) error {
	var errs []string
	for _, kind := range []string{"dummy", "bridge"} {
		out, err := exec.Command("ip", "link", "add", ifname, "type", kind).CombinedOutput()
		if err == nil || strings.Contains(string(out), "File exists") {
			return nil
		}
		errs = append(errs, fmt.Sprintf("type %s: %v: %s", kind, err, strings.TrimSpace(string(out))))
		if !strings.Contains(string(out), "Unknown device type") {
			break
		}
	}
	return fmt.Errorf("creating interface %s: %s", ifname, strings.Join(errs, "; "))
}

// RemoveLocalAddress deletes the interface EnsureLocalAddress made, with
// its addresses. An interface that does not exist is not an error.
func RemoveLocalAddress(ifname string) error {
	if _, err := net.InterfaceByName(ifname); err != nil {
		return nil
	}
	if out, err := exec.Command("ip", "link", "del", ifname).CombinedOutput(); err != nil {
		if _, gone := net.InterfaceByName(ifname); gone != nil {
			return nil // removed meanwhile
		}
		return fmt.Errorf("deleting %s: %w: %s", ifname, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func parseLocalPrefix(cidr string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(cidr); err == nil {
		return p, nil
	}
	ip, err := netip.ParseAddr(cidr)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("local address %q: neither an address nor a CIDR", cidr)
	}
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}
