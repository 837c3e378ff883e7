//go:build !linux

package volume

import "errors"

var errNoMounts = errors.New("tmpfs mounts are only supported on linux")

func mountTmpfs(dir string, sizeBytes int64) error  { return errNoMounts }
func unmount(dir string) error                      { return nil }
func mountPointsUnder(dir string) ([]string, error) { return nil, nil }
func isMountPoint(dir string) (bool, error)         { return false, nil }
