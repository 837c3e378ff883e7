package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	v1 "k8s.io/api/core/v1"
)

// checkHostPath applies a hostPath volume's `type`, with upstream's
// behaviour and error texts: DirectoryOrCreate makes the directory (0755),
// FileOrCreate an empty file (0644); the other types must already exist as
// that kind of file. An unset type checks nothing.
func checkHostPath(hp *v1.HostPathVolumeSource) error {
	if hp.Type == nil || *hp.Type == v1.HostPathUnset {
		return nil
	}
	path := hp.Path
	switch *hp.Type {
	case v1.HostPathDirectoryOrCreate:
		if !pathExists(path) {
			if err := os.MkdirAll(path, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			return nil
		}
		return typeMatchedOrError(path, v1.HostPathDirectory, "directory")
	case v1.HostPathDirectory:
		return typeMatchedOrError(path, v1.HostPathDirectory, "directory")
	case v1.HostPathFileOrCreate:
		if !pathExists(path) {
			f, err := os.OpenFile(path, os.O_CREATE, 0o644)
			if f != nil {
				f.Close()
			}
			if err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			return nil
		}
		return typeMatchedOrError(path, v1.HostPathFile, "file")
	case v1.HostPathFile:
		return typeMatchedOrError(path, v1.HostPathFile, "file")
	case v1.HostPathSocket:
		return typeMatchedOrError(path, v1.HostPathSocket, "socket file")
	case v1.HostPathCharDev:
		return typeMatchedOrError(path, v1.HostPathCharDev, "character device")
	case v1.HostPathBlockDev:
		return typeMatchedOrError(path, v1.HostPathBlockDev, "block device")
	default:
		return fmt.Errorf("%s is an invalid volume type", *hp.Type)
	}
}

func pathExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func typeMatchedOrError(path string, want v1.HostPathType, desc string) error {
	if !pathExists(path) {
		return fmt.Errorf("hostPath %s doesn't exist", path)
	}
	got, err := fileType(path)
	if err != nil {
		return fmt.Errorf("hostPath type check failed, %s is not a %s, unable to determine its type: %w", path, desc, err)
	}
	if got != want {
		return fmt.Errorf("hostPath type check failed: %s is not a %s, it's a %s", path, desc, got)
	}
	return nil
}

// fileType classifies path (following symlinks) in HostPathType words.
func fileType(path string) (v1.HostPathType, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	mode := info.Mode()
	switch {
	case mode&os.ModeSocket != 0:
		return v1.HostPathSocket, nil
	case mode&os.ModeCharDevice != 0:
		return v1.HostPathCharDev, nil
	case mode&os.ModeDevice != 0:
		return v1.HostPathBlockDev, nil
	case mode.IsDir():
		return v1.HostPathDirectory, nil
	case mode.IsRegular():
		return v1.HostPathFile, nil
	}
	return "", errors.New("only recognise file, directory, socket, block device and character device")
}
