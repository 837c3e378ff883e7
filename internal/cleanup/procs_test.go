package cleanup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSkiffNode(t *testing.T) {
	for _, tc := range []struct {
		name      string
		argv      []string
		cwd       string
		role, dir string
		ok        bool
	}{
		{"server with flag", []string{"/usr/local/bin/skiff", "server", "--data-dir", "/tmp/skn1"}, "/", "server", "/tmp/skn1", true},
		{"flag with =", []string{"skiff", "-v", "agent", "--server", "https://x", "--data-dir=/srv/a/"}, "/", "agent", "/srv/a", true},
		{"default dir", []string{"./bin/skiff", "server", "--https-port", "6443"}, "/", "server", "/var/lib/skiff", true},
		{"relative dir", []string{"skiff", "server", "--data-dir", "data"}, "/home/me", "server", "/home/me/data", true},
		{"relative without cwd", []string{"skiff", "server", "--data-dir", "data"}, "", "", "", false},
		{"other subcommand", []string{"skiff", "killall", "--data-dir", "/tmp/skn1"}, "/", "", "", false},
		{"image import", []string{"skiff", "image", "import", "--data-dir", "/tmp/skn1"}, "/", "", "", false},
		{"not skiff", []string{"/usr/bin/containerd", "server", "--data-dir", "/tmp/skn1"}, "/", "", "", false},
		{"no args", []string{"skiff"}, "/", "", "", false},
		{"after --", []string{"skiff", "server", "--", "--data-dir", "/x"}, "/", "server", "/var/lib/skiff", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			role, dir, ok := skiffNode(process{PID: 1, Argv: tc.argv, Cwd: tc.cwd}, "/var/lib/skiff")
			if role != tc.role || dir != tc.dir || ok != tc.ok {
				t.Errorf("skiffNode = %q, %q, %v; want %q, %q, %v", role, dir, ok, tc.role, tc.dir, tc.ok)
			}
		})
	}
}

func TestShimAndContainerd(t *testing.T) {
	const sock = "/tmp/skn1/agent/containerd/containerd.sock"
	shim := process{Argv: []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "abc", "-address", sock}}
	if ns, id, ok := isShimOf(shim, sock); !ok || ns != "k8s.io" || id != "abc" {
		t.Errorf("isShimOf(our shim) = %q, %q, %v", ns, id, ok)
	}
	system := process{Argv: []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "abc", "-address", "/run/containerd/containerd.sock"}}
	if _, _, ok := isShimOf(system, sock); ok {
		t.Error("isShimOf took the system containerd's shim for ours")
	}
	prefix := process{Argv: []string{"/usr/bin/containerd-shim-runc-v2", "-address", sock + ".other"}}
	if _, _, ok := isShimOf(prefix, sock); ok {
		t.Error("isShimOf matched a socket path by prefix")
	}
	const config = "/tmp/skn1/agent/containerd/config.toml"
	if !isContainerdOf(process{Argv: []string{"/usr/bin/containerd", "--config", config}}, config) {
		t.Error("isContainerdOf missed ours")
	}
	if isContainerdOf(process{Argv: []string{"/usr/bin/containerd"}}, config) {
		t.Error("isContainerdOf took the system containerd for ours")
	}
	if got := shimSocket(sock, "k8s.io", "abc"); !strings.HasPrefix(got, "/run/containerd/s/") || len(filepath.Base(got)) != 64 {
		t.Errorf("shimSocket = %s", got)
	}
}

func TestListProcessesAndDescendants(t *testing.T) {
	root := t.TempDir()
	write := func(pid, cmdline, stat string) {
		d := filepath.Join(root, pid)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(d, "cmdline"), []byte(cmdline), 0o644)
		_ = os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644)
	}
	write("10", "containerd-shim-runc-v2\x00-id\x00a\x00", "10 (containerd-shim) S 1 10 10 0")
	write("11", "/pause\x00", "11 (pause) S 10 11 11 0")
	write("12", "sleep\x003600\x00", "12 (a (weird) name) S 10 12 12 0")
	write("13", "sh\x00", "13 (sh) S 12 13 13 0")
	write("20", "other\x00", "20 (other) S 1 20 20 0")
	write("30", "", "30 (kthread) S 2 0 0 0") // kernel thread: no cmdline
	_ = os.MkdirAll(filepath.Join(root, "self"), 0o755)
	procs, err := listProcesses(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 5 {
		t.Fatalf("listProcesses: %d processes, want 5: %+v", len(procs), procs)
	}
	got := descendants(procs, map[int]bool{10: true})
	want := []int{11, 12, 13}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("descendants (-want +got):\n%s", diff)
	}
}
