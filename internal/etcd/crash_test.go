package etcd

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-io/skiff/internal/pki"
)

// crashHelperEnv names the data directory when the test binary runs as the
// writer that the test kills.
const crashHelperEnv = "SKIFF_ETCD_CRASH_HELPER_DIR"

// TestEmbeddedKeepsAcknowledgedWritesAfterKill runs a writer in a child
// process, kills it with SIGKILL mid-stream, restarts the member on the
// same directory and checks that every write the child saw acknowledged is
// there. (A process kill leaves the page cache intact, so this shows
// nothing acknowledged is lost on kill -9, not that fsync happened.)
func TestEmbeddedKeepsAcknowledgedWritesAfterKill(t *testing.T) {
	if dir := os.Getenv(crashHelperEnv); dir != "" {
		crashHelper(dir)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	if _, err := pki.Ensure(pki.Config{Dir: filepath.Join(dir, "tls")}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestEmbeddedKeepsAcknowledgedWritesAfterKill$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	lastAcked := -1
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			lastAcked, _ = strconv.Atoi(n)
			if lastAcked >= 300 {
				break
			}
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if lastAcked < 300 {
		t.Fatalf("child acknowledged only %d writes before exiting", lastAcked+1)
	}

	cfg := crashConfig(dir)
	cfg.Logger = slog.New(slog.DiscardHandler)
	e := start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i <= lastAcked; i++ {
		resp, err := e.Client().Get(ctx, fmt.Sprintf("k%06d", i))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 1 {
			t.Fatalf("acknowledged write k%06d lost after kill (last acknowledged %d)", i, lastAcked)
		}
	}
}

func crashConfig(dir string) Config {
	tls := filepath.Join(dir, "tls", "etcd")
	return Config{
		DataDir:        filepath.Join(dir, "etcd"),
		CertFile:       filepath.Join(tls, "server.crt"),
		KeyFile:        filepath.Join(tls, "server.key"),
		TrustedCAFile:  filepath.Join(tls, "ca.crt"),
		ClientCertFile: filepath.Join(tls, "client.crt"),
		ClientKeyFile:  filepath.Join(tls, "client.key"),
	}
}

// crashHelper writes keys until killed, printing each acknowledged one.
// It gives up after a bounded time so an orphan cannot run forever.
func crashHelper(dir string) {
	cfg := crashConfig(dir)
	cfg.Logger = slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, err := Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	for i := 0; ctx.Err() == nil; i++ {
		if _, err := e.Client().Put(ctx, fmt.Sprintf("k%06d", i), "v"); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		fmt.Printf("acked %d\n", i)
	}
	os.Exit(1)
}
