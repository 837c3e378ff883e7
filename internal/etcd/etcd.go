package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// Config selects the embedded member or an external cluster and holds the
// TLS files for each.
type Config struct {
	// DataDir is the embedded member's data directory (e.g.
	// <data-dir>/etcd); it is created with mode 0700.
	DataDir string
	// CertFile and KeyFile are the embedded member's server (and peer)
	// certificate; TrustedCAFile verifies the client certificates it
	// requires (mutual TLS). All three are needed in embedded mode.
	CertFile, KeyFile, TrustedCAFile string

	// Servers, when non-empty, names the client URLs of an external
	// cluster (--etcd-servers) and no member is started.
	Servers []string
	// ClientCAFile verifies the etcd servers' certificates; ClientCertFile
	// and ClientKeyFile are the client certificate presented to them
	// (--etcd-cafile, --etcd-certfile, --etcd-keyfile). In embedded mode
	// the client certificate is required and ClientCAFile defaults to
	// TrustedCAFile. In external mode all three are optional: with none of
	// them and http:// servers the client speaks plain gRPC.
	ClientCAFile, ClientCertFile, ClientKeyFile string

	// Member makes the embedded member one of a cluster of servers; the
	// zero value is a stand-alone member on loopback.
	Member MemberConfig

	// Logger receives etcd's own warnings and errors; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Etcd is a connected etcd client and, in embedded mode, the member it is
// connected to.
type Etcd struct {
	member    *embed.Etcd // nil for an external cluster
	client    *clientv3.Client
	endpoints []string
	quiet     *atomic.Bool // set by Close: etcd's shutdown logs go to debug

	closeOnce sync.Once
	closeErr  error
}

// Start starts the embedded member (unless cfg.Servers is set), waits until
// it serves, and connects a client; for an external cluster it connects and
// waits until a read succeeds. Both waits are bounded by ctx. On error
// nothing is left running.
func Start(ctx context.Context, cfg Config) (*Etcd, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.Servers) > 0 {
		return startExternal(ctx, cfg)
	}
	return startEmbedded(ctx, cfg)
}

func startExternal(ctx context.Context, cfg Config) (*Etcd, error) {
	quiet := new(atomic.Bool)
	client, err := newClient(cfg, cfg.Servers, quiet)
	if err != nil {
		return nil, err
	}
	e := &Etcd{client: client, quiet: quiet, endpoints: append([]string(nil), cfg.Servers...)}
	if err := e.Ready(ctx); err != nil {
		_ = e.Close()
		return nil, fmt.Errorf("etcd servers %v: %w", cfg.Servers, err)
	}
	return e, nil
}

// Client returns the connected client. It stays valid until Close.
func (e *Etcd) Client() *clientv3.Client { return e.client }

// Endpoints returns the client URLs the client talks to: the embedded
// member's loopback URL, or cfg.Servers.
func (e *Etcd) Endpoints() []string { return append([]string(nil), e.endpoints...) }

// Embedded reports whether e runs its own member.
func (e *Etcd) Embedded() bool { return e.member != nil }

// Err delivers a fatal error of the embedded member (its listeners failed
// or the server stopped on its own). The channel is nil, and so never
// ready, for an external cluster.
func (e *Etcd) Err() <-chan error {
	if e.member == nil {
		return nil
	}
	return e.member.Err()
}

// readyTimeout bounds Ready when ctx has no deadline.
const readyTimeout = 5 * time.Second

// Ready reports whether etcd serves a linearizable read, which needs a
// quorum and a leader, and, for the embedded member, that no alarm (such
// as NOSPACE) is raised. It backs the API server's /readyz and /livez etcd
// checks.
func (e *Etcd) Ready(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readyTimeout)
		defer cancel()
	}
	if _, err := e.client.Get(ctx, "health", clientv3.WithCountOnly()); err != nil {
		return fmt.Errorf("etcd read: %w", err)
	}
	if e.member != nil {
		if alarms := e.member.Server.Alarms(); len(alarms) > 0 {
			return fmt.Errorf("etcd alarm raised: %v", alarms[0].Alarm)
		}
	}
	return nil
}

// Close closes the client, then stops the embedded member and waits for
// it to exit. It is safe to call more than once; later calls return the
// first call's result.
func (e *Etcd) Close() error {
	e.closeOnce.Do(func() {
		e.quiet.Store(true)
		if e.client != nil {
			if err := e.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
				e.closeErr = fmt.Errorf("close etcd client: %w", err)
			}
		}
		if e.member != nil {
			e.member.Close()
		}
	})
	return e.closeErr
}
