package image

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strings"
)

// BusyboxRefs are the names the test busybox image is written under: a
// pinned tag (pull policy IfNotPresent, usable offline) and :latest (for
// manifests that name busybox bare, with imagePullPolicy: Never).
var BusyboxRefs = []string{"docker.io/library/busybox:1.36", "docker.io/library/busybox:latest"}

// DefaultBusybox is where Debian's busybox-static installs its binary.
const DefaultBusybox = "/bin/busybox"

// BusyboxFiles returns the content of a busybox image built from a static
// busybox binary on this machine: /bin/busybox, a symlink to it for every
// applet `busybox --list-full` names (most under /usr/bin and /usr/sbin,
// httpd at /usr/sbin/httpd), a world-writable /tmp, and /etc/passwd and
// /etc/group with root and nobody. binary must be statically linked: the
// image holds no libraries.
func BusyboxFiles(binary string) ([]File, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("busybox binary: %w", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(binary, "--list-full")
	cmd.Stderr = &stderr
	list, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w: %s", binary, err, strings.TrimSpace(stderr.String()))
	}
	files := []File{
		{Path: "/bin", Mode: fs.ModeDir | 0o755},
		{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{Path: "/etc", Mode: fs.ModeDir | 0o755},
		{Path: "/root", Mode: fs.ModeDir | 0o700},
		{Path: "/home", Mode: fs.ModeDir | 0o755},
		{Path: "/var", Mode: fs.ModeDir | 0o755},
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")},
		{Path: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnobody:x:65534:\n")},
		{Path: "/bin/busybox", Mode: 0o755, Data: data},
	}
	seen := map[string]bool{"bin/busybox": true}
	for _, line := range strings.Split(string(list), "\n") {
		p := path.Clean(strings.TrimPrefix(strings.TrimSpace(line), "/"))
		if p == "." || seen[p] {
			continue
		}
		seen[p] = true
		files = append(files, File{Path: "/" + p, Link: "/bin/busybox"})
	}
	if len(seen) < 2 {
		return nil, fmt.Errorf("%s --list-full named no applets", binary)
	}
	return files, nil
}

// WriteBusybox writes the test busybox image, under every name in
// BusyboxRefs, as an OCI-layout tarball. Its default command is sh.
func WriteBusybox(w io.Writer, binary string) error {
	files, err := BusyboxFiles(binary)
	if err != nil {
		return err
	}
	return WriteLayout(w, Image{
		Refs:   BusyboxRefs,
		Config: ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		Files:  files,
	})
}
