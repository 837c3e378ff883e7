package containerd

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/skiff-io/skiff/internal/image"
)

// Layout names the files a Process keeps under its Dir, for tools that
// find or clean up a containerd of skiff's without running one (`skiff
// killall`). Dir is the Config.Dir the Process was made with.
type Layout struct{ Dir string }

// Socket is the gRPC (and CRI) socket.
func (l Layout) Socket() string { return filepath.Join(l.Dir, socketFile) }

// Config is the config.toml containerd runs with; its path is on the
// running containerd's command line.
func (l Layout) Config() string { return filepath.Join(l.Dir, configFile) }

// PIDFile holds the pid of the containerd a node agent runs.
func (l Layout) PIDFile() string { return filepath.Join(l.Dir, pidFile) }

// Log is containerd's own log.
func (l Layout) Log() string { return filepath.Join(l.Dir, logFile) }

// RuncRoot is runc's state directory for the CRI namespace: `runc --root
// RuncRoot list` shows this containerd's containers and no one else's.
func (l Layout) RuncRoot() string { return filepath.Join(l.Dir, runcRootDir, image.Namespace) }

// RuncBinary is the runc the shims run.
const RuncBinary = runcBinary

// Bridge is the bridge named in the CNI conflist SetPodCIDR wrote, or ""
// with a nil error when there is no conflist yet.
func (l Layout) Bridge() (string, error) {
	b, err := os.ReadFile(filepath.Join(l.Dir, cniConfDir, conflistFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var c conflist
	if err := json.Unmarshal(b, &c); err != nil {
		return "", fmt.Errorf("CNI conflist: %w", err)
	}
	for _, p := range c.Plugins {
		if p["type"] == "bridge" {
			if name, ok := p["bridge"].(string); ok {
				return name, nil
			}
		}
	}
	return "", nil
}
