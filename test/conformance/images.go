package conformance

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/skiff-io/skiff/internal/image"
)

// imageSources is what the suite's images are made from.
type imageSources struct {
	Agnhost    string // agnhost, built static from upstream's source
	Nonewprivs string // test/images/nonewprivs, built static
	Busybox    string // a static busybox
	// BusyboxMade says how Busybox was made, for docs/conformance.md.
	BusyboxMade string
	// SampleAPIServer and Etcd are k8s.io/sample-apiserver and etcd's
	// server, built static: the aggregator test runs them side by side.
	SampleAPIServer string
	Etcd            string
	Kubernetes      string // k8s.io/kubernetes' module directory: the images' own files
	// HostTools are dynamically linked tools of this machine that
	// agnhost's Dockerfile installs from Alpine (dig, curl, nc, ss ...);
	// each is copied with the libraries ldd names.
	HostTools []string
}

// agnhostTools are the tools agnhost's Dockerfile adds (bind-tools, curl,
// netcat-openbsd, iproute2, bash, util-linux-misc, socat) that busybox
// lacks or does differently, at their Debian paths, plus getent for the
// glibc DNS prober.
var agnhostTools = []string{
	"/usr/bin/dig", "/usr/bin/host", "/usr/bin/nslookup", "/usr/bin/curl", "/usr/bin/nc.openbsd",
	"/usr/bin/ss", "/usr/bin/ip", "/usr/bin/bash", "/usr/bin/ipcs", "/usr/bin/socat", "/usr/bin/getent",
}

// refPattern splits an image reference into repository name and tag.
var refPattern = regexp.MustCompile(`^(.+/)?([^/:]+):([^/:]+)$`)

// suiteImages returns the images to write for the references the suite
// lists (`e2e.test --list-images`), and one line per reference saying how
// it was made, or that it could not be.
func suiteImages(refs []string, src imageSources) ([]image.Image, []string, error) {
	var images []image.Image
	var how []string
	var agnhost []image.File
	agnhostFiles := func() ([]image.File, error) {
		if agnhost != nil {
			return agnhost, nil
		}
		files, err := agnhostContent(src)
		agnhost = files
		return files, err
	}
	busybox := func() ([]image.File, error) { return suiteBusybox(src.Busybox) }
	sorted := append([]string{}, refs...)
	sort.Strings(sorted)
	for _, ref := range sorted {
		m := refPattern.FindStringSubmatch(ref)
		if m == nil {
			how = append(how, fmt.Sprintf("`%s`: not made (not a reference with a tag)", ref))
			continue
		}
		if !strings.HasPrefix(ref, "registry.k8s.io/") {
			// invalid.registry.k8s.io and gcr.io/k8s-authenticated-test:
			// tests expect pulling them to fail.
			how = append(how, fmt.Sprintf("`%s`: not made: the tests that name it expect its pull to fail", ref))
			continue
		}
		name := m[2]
		var img image.Image
		var line string
		var err error
		img.Refs = []string{ref}
		switch {
		case name == "agnhost":
			img.Files, err = agnhostFiles()
			img.Config = image.ImageConfig{Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}, Env: []string{pathEnv}}
			line = "agnhost, built from upstream's source at this version; its Dockerfile's Alpine tools are Debian's, copied from this machine with their libraries"
		case name == "busybox":
			img.Files, err = busybox()
			img.Config = image.ImageConfig{Cmd: []string{"sh"}, Env: []string{pathEnv}}
			line = "busybox: " + src.BusyboxMade
			if src.BusyboxMade == "" {
				line = "a static busybox"
			}
		case name == "pause":
			var data []byte
			data, err = image.PauseBinary()
			img.Files = []image.File{{Path: "/pause", Mode: 0o755, Data: data}}
			img.Config = image.ImageConfig{Entrypoint: []string{"/pause"}}
			line = "skiff's pause"
		case name == "kitten" || name == "nautilus":
			var files []image.File
			files, err = agnhostFiles()
			if err == nil {
				var extra []image.File
				extra, err = dirFiles(filepath.Join(src.Kubernetes, "test/images", name, "html"), "/")
				img.Files = append(append(append([]image.File{}, files...), extra...), alpineRelease)
			}
			img.Config = image.ImageConfig{Entrypoint: []string{"/agnhost"}, Cmd: []string{"test-webserver"}, Env: []string{pathEnv}}
			line = "as upstream's: agnhost's test-webserver with the image's html files, and Alpine's /etc/os-release (upstream's is built on Alpine; the ImageVolume test reads it)"
		case name == "nginx":
			img.Files, err = busybox()
			img.Files = append(img.Files,
				image.File{Path: "/usr/share/nginx/html/index.html", Mode: 0o644, Data: []byte("<html><body><h1>Welcome to nginx!</h1></body></html>\n")})
			img.Config = image.ImageConfig{Entrypoint: []string{"/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/usr/share/nginx/html"},
				ExposedPorts: []string{"80/tcp"}, Env: []string{pathEnv}}
			line = "a stand-in: busybox's httpd serving a page on port 80 (the tests use it as a web server)"
		case name == "nonroot":
			img.Files, err = busybox()
			img.Config = image.ImageConfig{User: "1234", Cmd: []string{"sh"}, Env: []string{pathEnv}}
			line = "as upstream's, USER 1234, on busybox instead of debian-base"
		case name == "nonewprivs":
			img.Files, err = busybox()
			if err == nil {
				var data []byte
				data, err = os.ReadFile(src.Nonewprivs)
				img.Files = append(img.Files, image.File{Path: "/usr/local/bin/nnp", Mode: 0o755 | fs.ModeSetuid, Data: data})
			}
			img.Config = image.ImageConfig{Cmd: []string{"nnp"}, Env: []string{pathEnv}}
			line = "as upstream's: nnp built from its source, setuid, on busybox instead of Alpine"
		case name == "glibc-dns-testing":
			img.Files, err = busybox()
			if err == nil {
				var tools []image.File
				tools, err = hostToolFiles([]string{"/usr/bin/dig", "/usr/bin/getent"})
				img.Files = overlay(img.Files, append(tools, nsswitch))
			}
			img.Config = image.ImageConfig{Cmd: []string{"sh"}, Env: []string{pathEnv}}
			line = "glibc's resolver with Debian's dig and getent, copied from this machine, on busybox"
		case name == "sample-apiserver":
			img.Files, err = binaryOnBusybox(src.Busybox, src.SampleAPIServer, "/sample-apiserver")
			img.Config = image.ImageConfig{Entrypoint: []string{"/sample-apiserver"}, Env: []string{pathEnv}}
			line = "as upstream's: sample-apiserver built from k8s.io/sample-apiserver at this version (upstream's tag names an older one), on busybox"
		case name == "etcd":
			img.Files, err = binaryOnBusybox(src.Busybox, src.Etcd, "/usr/local/bin/etcd")
			img.Config = image.ImageConfig{Env: []string{pathEnv}}
			line = "etcd's server built from go.etcd.io/etcd/server/v3 at the version this Kubernetes requires, on busybox (tests run /usr/local/bin/etcd)"
		default:
			how = append(how, fmt.Sprintf("`%s`: not made here; tests that run it fail to pull it", ref))
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("image %s: %w", ref, err)
		}
		images = append(images, img)
		how = append(how, fmt.Sprintf("`%s`: %s", ref, line))
	}
	return images, how, nil
}

const pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// alpineRelease is /etc/os-release of Alpine 3.21, the base of
// upstream's agnhost and so of kitten and nautilus: the ImageVolume test
// mounts kitten and expects "Alpine Linux" in it.
var alpineRelease = image.File{Path: "/etc/os-release", Mode: 0o644, Data: []byte(`NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.21.3
PRETTY_NAME="Alpine Linux v3.21"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
`)}

var nsswitch = image.File{Path: "/etc/nsswitch.conf", Mode: 0o644, Data: []byte("passwd: files\ngroup: files\nhosts: files dns\n")}

// suiteBusybox is a busybox binary shaped as the suite's busybox image
// (Docker's busybox) is: every applet also under /bin (the sysctl test
// runs /bin/sysctl; busybox puts it in /sbin). The runner gives it
// upstream's busybox built with the defconfig (see buildBusybox), whose
// sh keeps environment variables that are not shell identifiers and words
// its errors as the tests expect; the unit tests give it any busybox.
func suiteBusybox(binary string) ([]image.File, error) {
	files, err := image.BusyboxFiles(binary)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, f := range files {
		have[filepath.Clean(f.Path)] = true
	}
	var top []image.File
	for _, f := range files {
		bin := filepath.Join("/bin", filepath.Base(f.Path))
		if f.Link == "/bin/busybox" && !have[bin] {
			have[bin] = true
			top = append(top, image.File{Path: bin, Link: "/bin/busybox"})
		}
	}
	return overlay(files, top), nil
}

// binaryOnBusybox is the suite's busybox with the binary at path.
func binaryOnBusybox(busybox, binary, path string) ([]image.File, error) {
	files, err := suiteBusybox(busybox)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	return append(files, image.File{Path: path, Mode: 0o755, Data: data}), nil
}

// agnhostContent is agnhost's image: busybox for the shell and the usual
// tools, the tools the Dockerfile installs, and what the Dockerfile adds
// (porter's certificate, /uploads, the agnhost-2 link, the user and group
// one test expects in the image).
func agnhostContent(src imageSources) ([]image.File, error) {
	files, err := image.BusyboxFiles(src.Busybox)
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(src.Agnhost)
	if err != nil {
		return nil, err
	}
	tools, err := hostToolFiles(src.HostTools)
	if err != nil {
		return nil, err
	}
	porter := filepath.Join(src.Kubernetes, "test/images/agnhost/porter")
	crt, err := os.ReadFile(filepath.Join(porter, "localhost.crt"))
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(filepath.Join(porter, "localhost.key"))
	if err != nil {
		return nil, err
	}
	own := []image.File{
		{Path: "/agnhost", Mode: 0o755, Data: bin},
		{Path: "/agnhost-2", Link: "agnhost"},
		{Path: "/uploads", Mode: fs.ModeDir | 0o755},
		{Path: "/localhost.crt", Mode: 0o644, Data: crt},
		{Path: "/localhost.key", Mode: 0o644, Data: key},
		{Path: "/usr/bin/nc", Link: "nc.openbsd"},
		// Debian's busybox-static runs its own applets before PATH
		// (FEATURE_SH_STANDALONE), so `sh -c "nc ..."` would get
		// busybox's nc, which lacks the flags the tests use; Alpine's
		// busybox sh looks PATH up first. bash as sh does too.
		{Path: "/bin/sh", Link: "/usr/bin/bash"},
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n" +
			"user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n")},
		{Path: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnobody:x:65534:\nuser-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n")},
		nsswitch,
	}
	return overlay(files, append(tools, own...)), nil
}

// overlay returns base with every entry of top added, an entry of top
// replacing base's at the same path.
func overlay(base, top []image.File) []image.File {
	replaced := map[string]bool{}
	for _, f := range top {
		replaced[filepath.Clean("/"+f.Path)] = true
	}
	var out []image.File
	for _, f := range base {
		if !replaced[filepath.Clean("/"+f.Path)] {
			out = append(out, f)
		}
	}
	return append(out, top...)
}

// hostToolFiles returns the binaries at paths with every library ldd says
// they load (the dynamic loader included), each at the path ldd names.
func hostToolFiles(paths []string) ([]image.File, error) {
	seen := map[string]bool{}
	var files []image.File
	add := func(p string) error {
		if seen[p] {
			return nil
		}
		seen[p] = true
		data, err := os.ReadFile(p) // follows symlinks: the image holds the file itself
		if err != nil {
			return err
		}
		files = append(files, image.File{Path: p, Mode: 0o755, Data: data})
		return nil
	}
	for _, p := range paths {
		if err := add(p); err != nil {
			return nil, fmt.Errorf("%w (install the package that has it: see the Makefile's conformance-deps)", err)
		}
		out, err := exec.Command("ldd", p).Output()
		if err != nil {
			return nil, fmt.Errorf("ldd %s: %w", p, err)
		}
		for _, lib := range lddPaths(string(out)) {
			if err := add(lib); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

// lddPaths returns the absolute paths in ldd's output: "libx.so.1 =>
// /lib/x/libx.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)".
func lddPaths(out string) []string {
	var paths []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if _, after, ok := strings.Cut(line, "=> "); ok {
			line = after
		}
		p, _, _ := strings.Cut(line, " ")
		if strings.HasPrefix(p, "/") {
			paths = append(paths, p)
		}
	}
	return paths
}

// dirFiles returns the regular files of dir, at under/<name>.
func dirFiles(dir, under string) ([]image.File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []image.File
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files = append(files, image.File{Path: filepath.Join(under, e.Name()), Mode: 0o644, Data: data})
	}
	return files, nil
}
