package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/controller/manager"
)

// startControllers starts the controller-manager and the scheduler inside
// `skiff server`, each a client of the API over the in-process loopback
// connection, each leading only while it holds its Lease. rootCA is the
// cluster CA the serviceaccount controller publishes (the loopback
// configuration trusts no CA: it uses no TLS).
func startControllers(ctx context.Context, wg *sync.WaitGroup, loopback *rest.Config, rootCA []byte, cfg Config, bootstrapped <-chan struct{}) error {
	if _, err := manager.Enabled(cfg.Controllers); err != nil {
		return err
	}
	if cfg.LBPool != "" {
		if _, err := netip.ParsePrefix(cfg.LBPool); err != nil {
			return fmt.Errorf("--lb-pool: %w", err)
		}
	}
	if !cfg.DisableScheduler {
		if err := startScheduler(ctx, wg, loopback, bootstrapped); err != nil {
			return err
		}
	}
	client := rest.CopyConfig(loopback)
	client.QPS, client.Burst = 2000, 4000
	client.UserAgent = "skiff-controller-manager"
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-bootstrapped:
		case <-ctx.Done():
			return
		}
		err := manager.Run(ctx, manager.Config{
			Client:                 client,
			Controllers:            cfg.Controllers,
			ClusterCIDR:            cfg.ClusterCIDR,
			LBPool:                 cfg.LBPool,
			RootCA:                 rootCA,
			NodeMonitorGracePeriod: cfg.NodeMonitorGracePeriod,
			LeaderElect:            true,
		})
		if err != nil && ctx.Err() == nil {
			slog.Default().Error("controller-manager stopped", "err", err)
		}
	}()
	return nil
}
