package cleanup

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/skiff-io/skiff/internal/agent"
	"github.com/skiff-io/skiff/internal/podnet"
	"github.com/skiff-io/skiff/internal/proxy"
)

// deleteLink deletes the network interface name, reporting it; one that
// does not exist is no error.
func deleteLink(name, what string, report func(string, ...any)) error {
	if _, err := net.InterfaceByName(name); err != nil {
		return nil
	}
	if out, err := exec.Command("ip", "link", "del", name).CombinedOutput(); err != nil {
		if _, gone := net.InterfaceByName(name); gone != nil {
			return nil // removed meanwhile (a veth with its peer)
		}
		return fmt.Errorf("ip link del %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	report("deleted %s %s", what, name)
	return nil
}

// bridgePorts lists the interfaces attached to bridge (the host ends of
// pods' veths), from sysfs.
func bridgePorts(sysClassNet, bridge string) []string {
	entries, err := os.ReadDir(filepath.Join(sysClassNet, bridge, "brif"))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// deleteNFTable deletes the nftables table of family ip named name,
// reporting it; one that does not exist is no error.
func deleteNFTable(name string, report func(string, ...any)) error {
	if _, err := exec.LookPath("nft"); err != nil {
		return nil // no nft, no table of ours
	}
	if err := exec.Command("nft", "list", "table", "ip", name).Run(); err != nil {
		return nil
	}
	if out, err := exec.Command("nft", "delete", "table", "ip", name).CombinedOutput(); err != nil {
		return fmt.Errorf("nft delete table ip %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	report("deleted nftables table ip %s", name)
	return nil
}

// deleteShared deletes, in this process's network namespace, what one
// node sets up for every node sharing that namespace: the node-local DNS
// interface, the service proxy's nftables table and the pod network
// (deletePodNetwork). When other skiff nodes run on this machine (others:
// their data dirs) it keeps them all, saying so: one of those nodes may be
// the one using them.
func deleteShared(others []string, report func(string, ...any)) error {
	if len(others) > 0 {
		report("kept interface %s, nftables tables ip %s and ip %s, VXLAN device %s and pod network routes: other skiff nodes run on this machine (%s)",
			agent.DNSInterface, proxy.DefaultTable, podnet.MasqueradeTable, podnet.Device, strings.Join(others, ", "))
		return nil
	}
	var errs []error
	if err := deleteLink(agent.DNSInterface, "interface", report); err != nil {
		errs = append(errs, err)
	}
	if err := deleteNFTable(proxy.DefaultTable, report); err != nil {
		errs = append(errs, err)
	}
	if err := deletePodNetwork(report); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// deletePodNetwork deletes what internal/podnet sets up and leaves when
// the agent stops: its routes to other nodes' pods, the VXLAN device and
// the masquerade table. Each is reported; none existing is no error.
func deletePodNetwork(report func(string, ...any)) error {
	var errs []error
	// The routes first: those through the VXLAN device would go with it,
	// unreported.
	if err := deletePodRoutes(report); err != nil {
		errs = append(errs, err)
	}
	if err := deleteLink(podnet.Device, "VXLAN device", report); err != nil {
		errs = append(errs, err)
	}
	if err := deleteNFTable(podnet.MasqueradeTable, report); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// deletePodRoutes deletes the IPv4 routes of the main table marked with
// podnet.RouteProtocol, reporting each.
func deletePodRoutes(report func(string, ...any)) error {
	filter := &netlink.Route{Protocol: podnet.RouteProtocol}
	var routes []netlink.Route
	var err error
	// A dump interrupted by a concurrent change may be incomplete: try
	// again a few times, then delete what it returned all the same.
	for try := 0; try < 3; try++ {
		routes, err = netlink.RouteListFiltered(unix.AF_INET, filter, netlink.RT_FILTER_PROTOCOL)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	var errs []error
	if err != nil {
		err = fmt.Errorf("listing pod network routes (protocol %d): %w", podnet.RouteProtocol, err)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return err
		}
		errs = append(errs, err)
	}
	for _, r := range routes {
		desc := describeRoute(r)
		if err := netlink.RouteDel(&r); err != nil {
			if errors.Is(err, unix.ESRCH) {
				continue // gone meanwhile
			}
			errs = append(errs, fmt.Errorf("deleting pod network route %s: %w", desc, err))
			continue
		}
		report("deleted pod network route %s", desc)
	}
	return errors.Join(errs...)
}

// describeRoute is r as ip route shows it, in short: destination, gateway,
// device.
func describeRoute(r netlink.Route) string {
	s := "default"
	if r.Dst != nil {
		s = r.Dst.String()
	}
	if r.Gw != nil {
		s += " via " + r.Gw.String()
	}
	if r.LinkIndex > 0 {
		if link, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
			s += " dev " + link.Attrs().Name
		}
	}
	return s
}

// netnsInode is the inode of a network namespace file (/proc/<pid>/ns/net
// or a bind mount of one), which identifies the namespace.
func netnsInode(path string) (uint64, bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, false
	}
	return st.Ino, true
}

// removeNetns unmounts and removes the named network namespaces in dir
// (/var/run/netns) whose namespace is one of ours. The caller collects
// ours from the processes of skiff's pods while they still run.
func removeNetns(dir string, ours map[uint64]bool, report func(string, ...any)) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		ino, ok := netnsInode(p)
		if !ok || !ours[ino] {
			continue
		}
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		report("removed network namespace %s", p)
	}
	return errors.Join(errs...)
}

// shimSocket is the socket a containerd 1.6 runc v2 shim listens on: a
// hash of containerd's address, the namespace and the shim's id under
// /run/containerd/s, whatever containerd's own state dir. A shim killed
// with SIGKILL leaves it behind.
func shimSocket(address, ns, id string) string {
	return filepath.Join("/run/containerd/s", fmt.Sprintf("%x", sha256.Sum256([]byte(filepath.Join(address, ns, id)))))
}

// removeSocket removes a leftover unix socket file, reporting it.
func removeSocket(path string, report func(string, ...any)) error {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, syscall.ENOENT) {
		return err
	}
	report("removed shim socket %s", path)
	return nil
}
