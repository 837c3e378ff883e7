// Command build writes the container images skiff's tests and `make run`
// use, as OCI-layout tarballs that `skiff image import` (or the node
// agent at start) loads into containerd without a registry:
//
//	pause.tar      skiff.io/pause:3.10
//	busybox.tar    docker.io/library/busybox:1.36 and :latest (from the host's busybox-static)
//	server-v1.tar  skiff.io/test/server:v1 (test/images/server, version v1, with busybox)
//	server-v2.tar  skiff.io/test/server:v2 (the same server, version v2)
//
// Run it from the module: go run ./test/images/build -out build/images
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/skiff-io/skiff/internal/image"
)

// ServerRepo is the repository of the test server image; tags are versions.
const ServerRepo = "skiff.io/test/server"

// serverVersions are the versions built, one image each.
var serverVersions = []string{"v1", "v2"}

func main() {
	out := flag.String("out", "build/images", "directory to write the image tarballs to")
	busybox := flag.String("busybox", image.DefaultBusybox, "static busybox binary to build the busybox image from")
	goBin := flag.String("go", "go", "go command that builds the test server")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, *out, *busybox, *goBin, log); err != nil {
		log.Error("building images failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out, busybox, goBin string, log *slog.Logger) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(out, "pause.tar"), image.WritePause); err != nil {
		return err
	}
	log.Info("wrote image", "file", filepath.Join(out, "pause.tar"), "ref", image.PauseRef)
	if err := writeFile(filepath.Join(out, "busybox.tar"), func(w io.Writer) error { return image.WriteBusybox(w, busybox) }); err != nil {
		return err
	}
	log.Info("wrote image", "file", filepath.Join(out, "busybox.tar"), "refs", image.BusyboxRefs)
	tmp, err := os.MkdirTemp("", "skiff-server-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, v := range serverVersions {
		bin := filepath.Join(tmp, "server-"+v)
		if err := buildServer(ctx, goBin, bin, v); err != nil {
			return err
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		ref := ServerRepo + ":" + v
		file := filepath.Join(out, "server-"+v+".tar")
		// The server beside busybox: a shell and the usual tools (sh,
		// env, cat, wget, nslookup) for `kubectl exec`, as the images of
		// upstream's tutorials have.
		cfg := image.ImageConfig{Entrypoint: []string{"/server"}, ExposedPorts: []string{"8080/tcp"},
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}
		files, err := image.BusyboxFiles(busybox)
		if err != nil {
			return err
		}
		files = append(files, image.File{Path: "/server", Mode: 0o755, Data: data})
		if err := writeFile(file, func(w io.Writer) error { return image.WriteOCI(w, ref, cfg, files) }); err != nil {
			return err
		}
		log.Info("wrote image", "file", file, "ref", ref)
	}
	return nil
}

// buildServer compiles test/images/server, static, with main.version set.
func buildServer(ctx context.Context, goBin, out, version string) error {
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", out, "./test/images/server")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build test server %s (run from the skiff module): %w: %s", version, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// writeFile writes path through write, replacing it only when complete.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
