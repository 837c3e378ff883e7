package cleanup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// markers are entries of a skiff data dir: a server's has tls/ and etcd/
// (etcd/ only with the embedded etcd), an agent's agent/, and both the
// lock file.
var markers = []string{"tls", "etcd", "agent", "skiff.lock"}

// systemDirs are never a data dir, whatever they hold.
var systemDirs = map[string]bool{
	"/": true, "/bin": true, "/boot": true, "/dev": true, "/etc": true, "/home": true,
	"/lib": true, "/lib64": true, "/mnt": true, "/opt": true, "/proc": true, "/root": true,
	"/run": true, "/sbin": true, "/srv": true, "/sys": true, "/tmp": true, "/usr": true,
	"/usr/local": true, "/var": true, "/var/lib": true, "/var/run": true, "/var/tmp": true,
}

// checkDataDir refuses a dir Uninstall must not remove: the root or
// another system directory, a relative path, or a dir holding none of
// skiff's entries. A dir that does not exist passes (nothing to remove).
func checkDataDir(dir string) error {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return fmt.Errorf("data dir %q: want a clean absolute path", dir)
	}
	if systemDirs[dir] {
		return fmt.Errorf("data dir %s: refusing to remove a system directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	if len(entries) == 0 {
		return nil
	}
	for _, m := range markers {
		if _, err := os.Lstat(filepath.Join(dir, m)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("data dir %s does not look like skiff's (none of %v in it): refusing to remove it", dir, markers)
}

// Uninstall is KillAll followed by the removal of the data dir, which must
// look like skiff's (checked before anything is stopped). Nothing mounted
// may remain below it: removing would then reach into the mounted file
// systems.
func Uninstall(ctx context.Context, cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	if err := checkDataDir(cfg.DataDir); err != nil {
		return err
	}
	if err := KillAll(ctx, cfg); err != nil {
		return fmt.Errorf("killall: %w (data dir kept)", err)
	}
	dir := cfg.DataDir
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	realDir := dir
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		realDir = r
	}
	if left, err := readMountsUnder(realDir); err != nil || len(left) > 0 {
		return fmt.Errorf("data dir %s: still mounted below it: %v %v (data dir kept)", dir, left, err)
	}
	if mounted, _ := isMountPoint(realDir); mounted {
		// A file system of its own (the admin's disk): empty it, keep it.
		entries, err := os.ReadDir(realDir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(realDir, e.Name())); err != nil {
				return err
			}
		}
		fmt.Fprintf(cfg.Out, "emptied %s (a mount point: kept)\n", dir)
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	fmt.Fprintf(cfg.Out, "removed %s\n", dir)
	return nil
}

// isMountPoint reports whether dir is the root of a mount.
func isMountPoint(dir string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	return mountedAt(f, dir)
}
