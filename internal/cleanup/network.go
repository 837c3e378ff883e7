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

	"golang.org/x/sys/unix"
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
