package volume

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	v1 "k8s.io/api/core/v1"
)

// Modes upstream's SetVolumeOwnership adds for the fsGroup: read-write
// for the group on a writable volume, read on a read-only one (configMap,
// secret, downwardAPI and projected volumes, whatever the pod says), and
// search on directories (which also get the setgid bit, so that new files
// inherit the group).
const (
	groupRW   os.FileMode = 0o660
	groupRO   os.FileMode = 0o440
	groupExec os.FileMode = 0o110
)

// fsGroupMode is the mode setVolumeOwnership leaves on a file or
// directory of mode mode: mode with group (and owner) read, and write
// unless readOnly, added; directories also get search and setgid. So a
// secret file of defaultMode 0400 becomes 0440 and one of 0644 becomes
// 0644, and a writable volume's directory 0755 becomes 0775 with setgid.
func fsGroupMode(mode os.FileMode, readOnly, dir bool) os.FileMode {
	mask := groupRW
	if readOnly {
		mask = groupRO
	}
	if dir {
		mask |= groupExec | os.ModeSetgid
	}
	return mode | mask
}

// fsGroupOf is the pod's fsGroup, or nil.
func fsGroupOf(pod *v1.Pod) *int64 {
	if sc := pod.Spec.SecurityContext; sc != nil {
		return sc.FSGroup
	}
	return nil
}

// setVolumeOwnership gives every file under dir the group fsGroup and the
// modes fsGroupMode says, as upstream's SetVolumeOwnership does: Lchown to
// the group, chmod adding the group's bits, symlinks left unchmodded.
// With fsGroupChangePolicy OnRootMismatch nothing is walked when the root
// already has the group and those modes. A file that cannot be changed is
// logged and skipped, as upstream; only a failing walk is an error.
func setVolumeOwnership(dir string, fsGroup int64, policy *v1.PodFSGroupChangePolicy, readOnly bool, log *slog.Logger) error {
	if policy != nil && *policy == v1.FSGroupChangeOnRootMismatch && !needsOwnershipChange(dir, fsGroup, readOnly, log) {
		log.Debug("volume ownership already matches fsGroup; skipping", "path", dir, "fsGroup", fsGroup)
		return nil
	}
	// Walk what a container sees when the path is a symlink.
	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		dir = resolved
	}
	slow := time.AfterFunc(30*time.Second, func() {
		log.Warn("setting volume ownership for fsGroup is slow; a volume with many files may want fsGroupChangePolicy OnRootMismatch",
			"path", dir, "fsGroup", fsGroup)
	})
	defer slow.Stop()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(path, -1, int(fsGroup)); err != nil {
			log.Error("lchown for fsGroup failed", "path", path, "fsGroup", fsGroup, "err", err)
		}
		// chmod follows symlinks; the target's mode is what matters, and
		// reading a link's 0777 back onto its target would widen it.
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if want := fsGroupMode(info.Mode(), readOnly, d.IsDir()); want != info.Mode() {
			if err := os.Chmod(path, want); err != nil {
				log.Error("chmod for fsGroup failed", "path", path, "err", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set ownership of %s to group %d: %w", dir, fsGroup, err)
	}
	return nil
}

// needsOwnershipChange is upstream's OnRootMismatch test: the root is not
// owned by the group, is not a directory, lacks the group's bits or lacks
// setgid.
func needsOwnershipChange(dir string, fsGroup int64, readOnly bool, log *slog.Logger) bool {
	info, err := os.Stat(dir)
	if err != nil {
		log.Error("reading the volume root failed; changing ownership recursively", "path", dir, "err", err)
		return true
	}
	gid, err := gidOf(info)
	if err != nil || gid != fsGroup || !info.IsDir() {
		return true
	}
	want := fsGroupMode(0, readOnly, true)
	return info.Mode()&want != want
}

// groupOf is the group owning path.
func groupOf(path string) (int64, error) {
	info, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return gidOf(info)
}
