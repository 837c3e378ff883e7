package framework

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RegistryBinary is where Debian's docker-registry package (the
// Distribution registry, v2 API) installs the registry.
const RegistryBinary = "/usr/bin/docker-registry"

// Registry is a container image registry serving plain HTTP on a loopback
// port, for tests that pull images through the node's containerd.
type Registry struct {
	// Host is the registry's "<ip>:<port>" (127.0.0.1 unless
	// WithAddress), the first component of the image references it
	// serves.
	Host string

	logPath string
}

// RegistryOption configures StartRegistry.
type RegistryOption func(*registryConfig)

type registryConfig struct {
	user, password string
	ip             string
}

// WithAddress makes the registry listen on ip (one of this machine's
// addresses, such as a Network's Gateway, which nodes in network
// namespaces reach) instead of 127.0.0.1.
func WithAddress(ip string) RegistryOption {
	return func(c *registryConfig) { c.ip = ip }
}

// WithBasicAuth makes the registry demand HTTP basic auth (htpasswd) with
// this one user on every request.
func WithBasicAuth(user, password string) RegistryOption {
	return func(c *registryConfig) { c.user, c.password = user, password }
}

// CanRunRegistry says why StartRegistry cannot run here, or "" when it can.
func CanRunRegistry() string {
	if _, err := os.Stat(RegistryBinary); err != nil {
		return RegistryBinary + " is not installed (apt-get install docker-registry)"
	}
	return ""
}

// StartRegistry starts `docker-registry serve` on a free loopback port with
// filesystem storage in a temp dir and returns once it answers /v2/. It
// stops the registry in t.Cleanup. It skips the test when the registry is
// not installed, saying why.
func StartRegistry(t testing.TB, opts ...RegistryOption) *Registry {
	t.Helper()
	if why := CanRunRegistry(); why != "" {
		t.Skipf("skipping: %s", why)
	}
	var cfg registryConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.ip == "" {
		cfg.ip = "127.0.0.1"
	}
	dir := t.TempDir()
	r := &Registry{Host: net.JoinHostPort(cfg.ip, strconv.Itoa(FreePort(t))), logPath: filepath.Join(dir, "registry.log")}
	config := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "data"), r.Host)
	if cfg.user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(cfg.password), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("hashing the registry password: %v", err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, fmt.Appendf(nil, "%s:%s\n", cfg.user, hash), 0o600); err != nil {
			t.Fatal(err)
		}
		config += fmt.Sprintf("auth:\n  htpasswd:\n    realm: skiff-test\n    path: %s\n", htpasswd)
	}
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(RegistryBinary, "serve", configPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting the registry: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logFile.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("registry %s log:\n%s", r.Host, tail(r.Log(), 30))
		}
	})

	// Ready when /v2/ answers: 200, or 401 when it demands auth.
	deadline := time.Now().Add(20 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("registry exited at start: %v\n%s", err, r.Log())
		default:
		}
		resp, err := client.Get("http://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return r
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry %s not ready within 20s: %v\n%s", r.Host, err, r.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Log is what the registry has written to stdout and stderr so far.
func (r *Registry) Log() string {
	b, _ := os.ReadFile(r.logPath)
	return string(b)
}
