package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// fileProjection is one file of a volume's payload.
type fileProjection struct {
	Data []byte
	Mode os.FileMode // permission bits only
}

const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
	// tsDirLayout names the timestamped content directories as upstream
	// does; os.MkdirTemp appends a random number: ..2026_11_27_10_00_00.123
	tsDirLayout = "..2006_01_02_15_04_05."
)

// writeAtomic makes dir hold exactly payload, so that a reader never sees a
// mix of old and new content:
//
//  1. the payload goes into a new directory dir/..<timestamp>.<n>, and
//     setPerms (when not nil) runs once it is written;
//  2. dir/..data (a relative symlink to that directory) is replaced with
//     rename(2), which is atomic;
//  3. every top-level name of the payload is a symlink name -> ..data/name,
//     created once and left alone afterwards; names that left the payload
//     are removed;
//  4. the previous timestamped directory is removed.
//
// When dir already holds the same payload (data and modes) nothing is
// written and changed is false. dir must exist.
func writeAtomic(dir string, payload map[string]fileProjection, now time.Time, setPerms func() error) (changed bool, err error) {
	clean := make(map[string]fileProjection, len(payload))
	for p, f := range payload {
		if err := validatePayloadPath(p); err != nil {
			return false, err
		}
		clean[filepath.Clean(p)] = f
	}

	oldTs, err := os.Readlink(filepath.Join(dir, dataDirName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read %s link in %s: %w", dataDirName, dir, err)
	}
	var oldPayload map[string]fileProjection
	if oldTs != "" {
		oldPayload, err = readPayload(filepath.Join(dir, oldTs))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		if err == nil && samePayload(oldPayload, clean) && visibleLinksExist(dir, clean) {
			return false, nil
		}
	}

	tsDir, err := os.MkdirTemp(dir, now.UTC().Format(tsDirLayout))
	if err != nil {
		return false, fmt.Errorf("create content dir in %s: %w", dir, err)
	}
	tsName := filepath.Base(tsDir)
	if err := writePayload(tsDir, clean); err != nil {
		_ = os.RemoveAll(tsDir)
		return false, err
	}
	if setPerms != nil {
		if err := setPerms(); err != nil {
			_ = os.RemoveAll(tsDir)
			return false, err
		}
	}

	tmpLink := filepath.Join(dir, newDataDirName)
	if err := os.Remove(tmpLink); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("remove stale %s: %w", tmpLink, err)
	}
	if err := os.Symlink(tsName, tmpLink); err != nil {
		_ = os.RemoveAll(tsDir)
		return false, fmt.Errorf("link %s: %w", tmpLink, err)
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, dataDirName)); err != nil {
		_ = os.Remove(tmpLink)
		_ = os.RemoveAll(tsDir)
		return false, fmt.Errorf("swap %s in %s: %w", dataDirName, dir, err)
	}

	newTop := topLevelNames(clean)
	for name := range newTop {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return true, fmt.Errorf("stat %s: %w", link, err)
		}
		if err := os.Symlink(filepath.Join(dataDirName, name), link); err != nil {
			return true, fmt.Errorf("link %s: %w", link, err)
		}
	}
	for name := range topLevelNames(oldPayload) {
		if _, keep := newTop[name]; keep {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return true, fmt.Errorf("remove %s from %s: %w", name, dir, err)
		}
	}

	// Remove the previous content and any content dir a crash left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true, fmt.Errorf("list %s: %w", dir, err)
	}
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() || !strings.HasPrefix(n, "..") || n == tsName {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
			return true, fmt.Errorf("remove old content %s: %w", n, err)
		}
	}
	return true, nil
}

// validatePayloadPath rejects what upstream rejects: absolute paths, `..`
// elements, names starting with `..` (they would collide with the
// writer's own entries) and over-long names.
func validatePayloadPath(p string) error {
	switch {
	case p == "":
		return errors.New("invalid path: must not be empty")
	case len(p) > 4096:
		return fmt.Errorf("invalid path: must be less than or equal to 4096 characters")
	case filepath.IsAbs(p):
		return fmt.Errorf("invalid path %q: must be relative path", p)
	case strings.HasPrefix(p, ".."):
		return fmt.Errorf("invalid path %q: must not start with '..'", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return fmt.Errorf("invalid path %q: must not contain '..'", p)
		}
		if len(seg) > 255 {
			return fmt.Errorf("invalid path %q: each path segment must be less than or equal to 255 characters", p)
		}
	}
	return nil
}

func writePayload(tsDir string, payload map[string]fileProjection) error {
	if err := os.Chmod(tsDir, 0o755); err != nil {
		return fmt.Errorf("chmod %s: %w", tsDir, err)
	}
	for p, f := range payload {
		full := filepath.Join(tsDir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("create dir for %s: %w", p, err)
		}
		mode := f.Mode & os.ModePerm
		if err := os.WriteFile(full, f.Data, mode); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		// WriteFile's mode passes through the umask; set it exactly.
		if err := os.Chmod(full, mode); err != nil {
			return fmt.Errorf("chmod %s: %w", p, err)
		}
	}
	return nil
}

// readPayload reads the regular files under tsDir back into a payload.
func readPayload(tsDir string) (map[string]fileProjection, error) {
	out := map[string]fileProjection{}
	err := filepath.WalkDir(tsDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(tsDir, path)
		if err != nil {
			return err
		}
		out[rel] = fileProjection{Data: data, Mode: info.Mode().Perm()}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read content %s: %w", tsDir, err)
	}
	return out, nil
}

func samePayload(a, b map[string]fileProjection) bool {
	if len(a) != len(b) {
		return false
	}
	for p, fa := range a {
		fb, ok := b[p]
		if !ok || fa.Mode&os.ModePerm != fb.Mode&os.ModePerm || !bytes.Equal(fa.Data, fb.Data) {
			return false
		}
	}
	return true
}

func visibleLinksExist(dir string, payload map[string]fileProjection) bool {
	for name := range topLevelNames(payload) {
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			return false
		}
	}
	return true
}

func topLevelNames(payload map[string]fileProjection) map[string]struct{} {
	out := make(map[string]struct{}, len(payload))
	for p := range payload {
		out[strings.SplitN(p, "/", 2)[0]] = struct{}{}
	}
	return out
}
