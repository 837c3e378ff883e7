package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-io/skiff/internal/image"
)

func TestLddPaths(t *testing.T) {
	out := "\tlinux-vdso.so.1 (0x00007ffd4a1f3000)\n" +
		"\tlibcurl.so.4 => /lib/x86_64-linux-gnu/libcurl.so.4 (0x00007f0e1c0a0000)\n" +
		"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0e1be00000)\n" +
		"\t/lib64/ld-linux-x86-64.so.2 (0x00007f0e1c1b0000)\n"
	want := []string{"/lib/x86_64-linux-gnu/libcurl.so.4", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}
	if diff := cmp.Diff(want, lddPaths(out)); diff != "" {
		t.Errorf("lddPaths (-want +got):\n%s", diff)
	}
}

func TestOverlay(t *testing.T) {
	base := []image.File{{Path: "/bin/busybox"}, {Path: "/usr/bin/nc", Link: "/bin/busybox"}, {Path: "/etc/passwd", Data: []byte("root")}}
	top := []image.File{{Path: "usr/bin/nc", Link: "nc.openbsd"}, {Path: "/etc/passwd", Data: []byte("root,user")}}
	got := overlay(base, top)
	want := []image.File{{Path: "/bin/busybox"}, {Path: "usr/bin/nc", Link: "nc.openbsd"}, {Path: "/etc/passwd", Data: []byte("root,user")}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("overlay (-want +got):\n%s", diff)
	}
}

func TestSuiteImages(t *testing.T) {
	if _, err := os.Stat(image.DefaultBusybox); err != nil {
		t.Skipf("skipping: no static busybox at %s (apt-get install busybox-static)", image.DefaultBusybox)
	}
	dir := t.TempDir()
	agnhost := filepath.Join(dir, "agnhost")
	k8s := filepath.Join(dir, "kubernetes")
	for path, data := range map[string]string{
		agnhost: "agnhost binary",
		filepath.Join(k8s, "test/images/agnhost/porter/localhost.crt"): "crt",
		filepath.Join(k8s, "test/images/agnhost/porter/localhost.key"): "key",
		filepath.Join(k8s, "test/images/kitten/html/data.json"):        `{"image": "kitten"}`,
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	refs := []string{
		"registry.k8s.io/e2e-test-images/agnhost:2.66.1",
		"gcr.io/k8s-authenticated-test/agnhost:2.6",
		"invalid.registry.k8s.io/invalid/alpine:3.1",
		"registry.k8s.io/pause:3.10.2",
		"registry.k8s.io/e2e-test-images/kitten:1.8",
		"registry.k8s.io/e2e-test-images/nginx:1.27.0-2",
		"registry.k8s.io/e2e-test-images/perl:5.26",
		"registry.k8s.io/e2e-test-images/busybox:1.37.0-1",
	}
	imgs, how, err := suiteImages(refs, imageSources{Agnhost: agnhost, Busybox: image.DefaultBusybox, Kubernetes: k8s})
	if err != nil {
		t.Fatal(err)
	}
	made := map[string]image.Image{}
	for _, img := range imgs {
		made[img.Refs[0]] = img
	}
	if len(made) != 5 {
		t.Errorf("made %d images, want agnhost, busybox, pause, kitten and nginx:\n%s", len(made), strings.Join(how, "\n"))
	}
	for _, ref := range []string{"gcr.io/k8s-authenticated-test/agnhost:2.6", "invalid.registry.k8s.io/invalid/alpine:3.1", "registry.k8s.io/e2e-test-images/perl:5.26"} {
		if _, ok := made[ref]; ok {
			t.Errorf("made %s: a test expects its pull to fail, or it cannot be made here", ref)
		}
	}
	has := func(img image.Image, path, data string) bool {
		for _, f := range img.Files {
			if f.Path == path && string(f.Data) == data {
				return true
			}
		}
		return false
	}
	a := made["registry.k8s.io/e2e-test-images/agnhost:2.66.1"]
	if diff := cmp.Diff([]string{"/agnhost"}, a.Config.Entrypoint); diff != "" || !has(a, "/agnhost", "agnhost binary") || !has(a, "/localhost.crt", "crt") {
		t.Errorf("agnhost image: entrypoint %v, want /agnhost with the binary and porter's certificate", a.Config.Entrypoint)
	}
	for _, f := range a.Files {
		if f.Path == "/bin/sh" && f.Link != "/usr/bin/bash" {
			t.Errorf("agnhost's /bin/sh links to %q, want bash: busybox's sh runs its own nc before PATH's", f.Link)
		}
	}
	// The suite's busybox: every applet under /bin, sh among them.
	files := map[string]image.File{}
	for _, f := range made["registry.k8s.io/e2e-test-images/busybox:1.37.0-1"].Files {
		files[f.Path] = f
	}
	if f := files["/bin/sysctl"]; f.Link != "/bin/busybox" {
		t.Errorf("busybox's /bin/sysctl is %+v, want a link to /bin/busybox", f)
	}
	if f := files["/bin/sh"]; f.Link != "/bin/busybox" {
		t.Errorf("busybox's /bin/sh links to %q, want busybox's own sh", f.Link)
	}
	k := made["registry.k8s.io/e2e-test-images/kitten:1.8"]
	if diff := cmp.Diff([]string{"test-webserver"}, k.Config.Cmd); diff != "" || !has(k, "/data.json", `{"image": "kitten"}`) {
		t.Errorf("kitten image: cmd %v, want agnhost's test-webserver serving its html files", k.Config.Cmd)
	}
	if !has(k, "/etc/os-release", string(alpineRelease.Data)) || !strings.Contains(string(alpineRelease.Data), `NAME="Alpine Linux"`) {
		t.Errorf("kitten image: no Alpine /etc/os-release (the ImageVolume test reads it)")
	}
	if len(how) != len(refs) {
		t.Errorf("%d lines of how images were made, want one per reference (%d)", len(how), len(refs))
	}
}
