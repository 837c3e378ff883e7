package image

import (
	"bytes"
	"context"
	"encoding/json"
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
		return "", fmt.Errorf("containerd's ctr command is needed to import and mount images (Debian: apt-get install containerd): %w", err)
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
//
// With a stamp file it imports only what changed: the stamp records each
// imported file's size, modification time and the images it created, and
// a file whose size and time match and whose images containerd still has
// is skipped (a restart then costs one image listing, not an import of
// every tarball).
func ImportDir(ctx context.Context, socket, dir, stamp string, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return fmt.Errorf("import images from %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil
	}
	slices.Sort(files)
	done := readStamp(stamp)
	var have []string
	if len(done) > 0 {
		if have, err = List(ctx, socket); err != nil {
			done = nil // import everything
		}
	}
	next := map[string]stampEntry{}
	var errs []error
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("import %s: %w", f, err))
			continue
		}
		entry := stampEntry{Size: fi.Size(), ModTime: fi.ModTime().UnixNano()}
		if prev, ok := done[f]; ok && prev.Size == entry.Size && prev.ModTime == entry.ModTime &&
			len(prev.Images) > 0 && allIn(prev.Images, have) {
			next[f] = prev
			continue
		}
		refs, err := Import(ctx, socket, f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		entry.Images = refs
		next[f] = entry
		log.Info("imported images", "file", f, "images", refs)
	}
	if stamp != "" {
		if err := writeStamp(stamp, next); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stampEntry is what ImportDir remembers of one imported tarball.
type stampEntry struct {
	Size    int64    `json:"size"`
	ModTime int64    `json:"modTime"`
	Images  []string `json:"images"`
}

// readStamp reads a stamp file; a missing or unreadable one is empty.
func readStamp(path string) map[string]stampEntry {
	out := map[string]stampEntry{}
	if path == "" {
		return out
	}
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &out) != nil {
		return map[string]stampEntry{}
	}
	return out
}

func writeStamp(path string, entries map[string]stampEntry) error {
	b, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("image import stamp: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("image import stamp: %w", err)
	}
	return nil
}

func allIn(want, have []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
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
