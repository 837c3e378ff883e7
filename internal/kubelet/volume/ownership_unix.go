//go:build unix

package volume

import (
	"errors"
	"os"
	"syscall"
)

// gidOf is the group owning the file info describes.
func gidOf(info os.FileInfo) (int64, error) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || st == nil {
		return 0, errors.New("file owner unknown")
	}
	return int64(st.Gid), nil
}
