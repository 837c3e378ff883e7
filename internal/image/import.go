package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Namespace is the containerd namespace the CRI plugin serves: images
// imported anywhere else are invisible to pods.
const Namespace = "k8s.io"

// ctrBinary is containerd's own CLI, which ships with Debian's containerd
// package. Importing through it keeps containerd's client library (and its
// dependency tree) out of skiff.
const ctrBinary = "ctr"

// ctr runs `ctr --address socket -n k8s.io args...` and returns its
// standard output; a failure carries ctr's standard error.
func ctr(ctx context.Context, socket string, args ...string) (string, error) {
	bin, err := exec.LookPath(ctrBinary)
	if err != nil {
		return "", fmt.Errorf("containerd's ctr command is needed to import images (Debian: apt-get install containerd): %w", err)
	}
	if _, err := os.Stat(socket); err != nil {
		return "", fmt.Errorf("containerd socket: %w (is the skiff node agent running?)", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append([]string{"--address", socket, "--namespace", Namespace}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return "", fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

// Import imports an OCI-layout or docker-archive tarball into containerd's
// k8s.io namespace through the containerd at socket and unpacks it into
// the default (overlayfs) snapshotter, so the CRI plugin can run it at
// once. It returns the references it created, in the order ctr named them.
//
// Only the host's platform (linux/amd64) is imported. An OCI layout names
// its images with the io.containerd.image.name annotation (WriteOCI sets
// it); a layout without one is imported under a generated import-<date>
// name by ctr.
func Import(ctx context.Context, socket string, file string) ([]string, error) {
	if _, err := os.Stat(file); err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	out, err := ctr(ctx, socket, "images", "import", file)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", file, err)
	}
	refs := parseImportOutput(out)
	if len(refs) == 0 {
		return nil, fmt.Errorf("import %s: ctr imported no image: %s", file, strings.TrimSpace(out))
	}
	return refs, nil
}

// parseImportOutput returns the image names from `ctr images import`
// output, whose lines for each image read
// "unpacking <name> (sha256:<digest>)...done".
func parseImportOutput(out string) []string {
	var refs []string
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "unpacking ")
		if !ok {
			continue
		}
		name, _, ok := strings.Cut(rest, " (")
		if !ok || name == "" || slices.Contains(refs, name) {
			continue
		}
		refs = append(refs, name)
	}
	return refs
}

// List returns the names of every image in containerd's k8s.io namespace.
func List(ctx context.Context, socket string) ([]string, error) {
	out, err := ctr(ctx, socket, "images", "list", "--quiet")
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return strings.Fields(out), nil
}

// ImportDir imports every *.tar file in dir, in name order. A missing dir
// is not an error (there is nothing to import). It tries every file and
// returns the errors of those that failed.
func ImportDir(ctx context.Context, socket, dir string, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return fmt.Errorf("import images from %s: %w", dir, err)
	}
	slices.Sort(files)
	var errs []error
	for _, f := range files {
		refs, err := Import(ctx, socket, f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		log.Info("imported images", "file", f, "images", refs)
	}
	return errors.Join(errs...)
}

// EnsurePause imports the pause image (PauseRef) into the containerd at
// socket unless it is already there. scratchDir receives the generated
// tarball for the time of the import.
func EnsurePause(ctx context.Context, socket string, scratchDir string) error {
	have, err := List(ctx, socket)
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	if slices.Contains(have, PauseRef) {
		return nil
	}
	if err := os.MkdirAll(scratchDir, 0o700); err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	f, err := os.CreateTemp(scratchDir, "pause-*.tar")
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	defer os.Remove(f.Name())
	if err := WritePause(f); err != nil {
		f.Close()
		return fmt.Errorf("pause image: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	refs, err := Import(ctx, socket, f.Name())
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	if !slices.Contains(refs, PauseRef) {
		return fmt.Errorf("pause image: importing it created %v, not %s", refs, PauseRef)
	}
	return nil
}
