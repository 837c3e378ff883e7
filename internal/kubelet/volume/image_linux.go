package volume

import (
	"fmt"
	"syscall"
)

// restrictImageMount makes the mount on dir read-only, nosuid, nodev and
// noexec, as upstream's runtimes mount image volumes on Linux. It changes
// the flags of this mount only (a bind remount), whatever the filesystem.
//
// Containers get read-only only: runc remounts a read-only bind mount with
// the flags the CRI asks for (containerd 1.6 asks for none of the other
// three), which clears them. Asking for a read-write bind instead would
// keep this mount's flags under runc 1.1, but a runtime that remounts "rw"
// would then write into the image's layers; read-only matters more.
func restrictImageMount(dir string) error {
	flags := uintptr(syscall.MS_REMOUNT | syscall.MS_BIND | syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC)
	if err := syscall.Mount("", dir, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only, nosuid, nodev, noexec: %w", dir, err)
	}
	return nil
}
