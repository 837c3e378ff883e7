package containerd

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeBinary returns an executable file that New accepts as containerd.
func fakeBinary(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "containerd")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNew(t *testing.T) {
	bin := fakeBinary(t)
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", Config{}, ""},
		{"no dir", Config{Dir: "-"}, "Dir is required"},
		{"socket too long", Config{Dir: "/" + strings.Repeat("d", 90)}, "choose a shorter data directory"},
		{"bridge too long", Config{Bridge: "a-very-long-bridge"}, "bridge name"},
		{"no binary", Config{Binary: "/nonexistent/containerd"}, "apt-get install containerd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			switch cfg.Dir {
			case "-":
				cfg.Dir = ""
			case "":
				cfg.Dir = t.TempDir()
			}
			if cfg.Binary == "" {
				cfg.Binary = bin
			}
			p, err := New(cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := p.Endpoint(), "unix://"+filepath.Join(cfg.Dir, "containerd.sock"); got != want {
				t.Errorf("Endpoint() = %s, want %s", got, want)
			}
			toml, err := os.ReadFile(filepath.Join(cfg.Dir, "config.toml"))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{
				"version = 2",
				`address = "` + p.Socket() + `"`,
				`sandbox_image = "skiff.io/pause:3.10"`,
				"restrict_oom_score_adj = true",
				"netns_mounts_under_state_dir = true",
				`stream_server_address = "127.0.0.1"`,
				`stream_server_port = "0"`,
				`Root = "` + filepath.Join(cfg.Dir, "runc") + `"`,
				"SystemdCgroup = false",
				`bin_dir = "/usr/lib/cni"`,
				`conf_dir = "` + filepath.Join(cfg.Dir, "net.d") + `"`,
				`config_path = "` + filepath.Join(cfg.Dir, "certs.d") + `"`,
			} {
				if !strings.Contains(string(toml), want) {
					t.Errorf("config.toml lacks %q:\n%s", want, toml)
				}
			}
			if _, err := os.Stat(filepath.Join(cfg.Dir, "net.d", conflistFile)); !os.IsNotExist(err) {
				t.Errorf("New wrote the conflist (stat: %v); only SetPodCIDR should", err)
			}
		})
	}
}

func TestSetPodCIDR(t *testing.T) {
	dir := t.TempDir()
	p, err := New(Config{Dir: dir, Bridge: "br-test", Binary: fakeBinary(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "10.0.0.0", "10.0.0.1/24", "nonsense/8"} {
		if err := p.SetPodCIDR(bad); err == nil {
			t.Errorf("SetPodCIDR(%q) succeeded, want an error", bad)
		}
	}
	read := func() map[string]any {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, "net.d", conflistFile))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("conflist: %v\n%s", err, b)
		}
		return m
	}
	for _, cidr := range []string{"10.88.7.0/24", "10.88.9.0/24"} {
		if err := p.SetPodCIDR(cidr); err != nil {
			t.Fatal(err)
		}
		got := read()
		want := map[string]any{
			"cniVersion": "1.0.0",
			"name":       "skiff",
			"plugins": []any{
				map[string]any{
					"type": "bridge", "bridge": "br-test", "isGateway": true, "ipMasq": false, "hairpinMode": true,
					"ipam": map[string]any{
						"type":    "host-local",
						"dataDir": filepath.Join(dir, "cni-ipam"),
						"ranges":  []any{[]any{map[string]any{"subnet": cidr}}},
						"routes":  []any{map[string]any{"dst": "0.0.0.0/0"}},
					},
				},
				map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}},
			},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("conflist for %s (-want +got):\n%s", cidr, diff)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "net.d"))
	if len(entries) != 1 {
		t.Errorf("net.d holds %d files, want only the conflist", len(entries))
	}
}

func TestRenderConflistIPv6(t *testing.T) {
	b, err := renderConflist("b", netip.MustParsePrefix("fd00:10::/64"), "/x", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"dst": "::/0"`) {
		t.Errorf("IPv6 conflist lacks the ::/0 route:\n%s", b)
	}
}
