package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
)

// DefaultDataDir is skiff's data directory unless --data-dir says otherwise.
const DefaultDataDir = "/var/lib/skiff"

// SocketPath returns the socket of the node agent's private containerd
// under dataDir (see the kubelet's containerd package, which creates it).
func SocketPath(dataDir string) string {
	return filepath.Join(dataDir, "agent", "containerd", "containerd.sock")
}

// ImportConfig is the configuration of `skiff image import`.
type ImportConfig struct {
	DataDir string   // skiff's data directory; the socket is found under it
	Address string   // containerd socket; overrides DataDir when set
	Files   []string // OCI-layout or docker-archive tarballs
}

// RunImport imports every file of cfg into the node agent's containerd and
// writes one line per image created to out. It tries every file and
// returns the errors of those that failed.
func RunImport(ctx context.Context, cfg ImportConfig, out io.Writer) error {
	if len(cfg.Files) == 0 {
		return errors.New("no image file given")
	}
	socket := cfg.Address
	if socket == "" {
		dataDir := cfg.DataDir
		if dataDir == "" {
			dataDir = DefaultDataDir
		}
		socket = SocketPath(dataDir)
	}
	var errs []error
	for _, f := range cfg.Files {
		refs, err := Import(ctx, socket, f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, r := range refs {
			fmt.Fprintf(out, "imported %s\n", r)
		}
	}
	return errors.Join(errs...)
}
