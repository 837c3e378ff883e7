package etcd

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// lockedBuffer is an io.Writer that tests may read while etcd writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestEmbeddedRestartLogsNoPublishRetries restarts a member that holds
// more WAL entries than etcd's apply gap (5,000) and checks that the
// restart logs no warning: at etcd's default snapshot count the member's
// first proposal failed "too many requests" in a loop, a warning a try.
func TestEmbeddedRestartLogsNoPublishRetries(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 8,000 keys")
	}
	cfg := embeddedConfig(t)
	e := start(t, cfg)
	const keys = 8000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		wg   sync.WaitGroup
		errs = make(chan error, 32)
	)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < keys; i += 32 {
				if _, err := e.Client().Put(ctx, fmt.Sprintf("/registry/k%05d", i), "v"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	var logged lockedBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e = start(t, cfg)
	resp, err := e.Client().Get(ctx, "/registry/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != keys {
		t.Errorf("after restart %d keys, want %d", resp.Count, keys)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if out := logged.String(); strings.TrimSpace(out) != "" {
		n := strings.Count(out, "failed to publish local member")
		t.Errorf("restart logged warnings (%d of them publish retries):\n%.2000s", n, out)
	}
}
