package server

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/authorizer/rbac"
	"github.com/skiff-io/skiff/internal/controller/manager"
	"github.com/skiff-io/skiff/internal/controller/podautoscaler"
	"github.com/skiff-io/skiff/internal/controller/reconcile"
	"github.com/skiff-io/skiff/internal/leader"
	"github.com/skiff-io/skiff/internal/localpath"
	"github.com/skiff-io/skiff/internal/scheduler"
)

// startControllers starts the controller-manager and the scheduler inside
// `skiff server`, each a client of the API over the in-process connection
// (inProcess, which carries no credentials), each leading only while it
// holds its Lease, and each acting as itself (ids): the scheduler as
// system:kube-scheduler, the controller-manager as
// system:kube-controller-manager, each controller as its service account
// in kube-system. ca is the cluster CA bundle the serviceaccount
// controller publishes (the in-process configuration trusts no CA: it
// uses no TLS) and the CA csrsigning signs with.
// rootCA is the CA bundle in force, a channel that says it changed, and
// the CA that signs now (during a rotation, the new one).
type rootCA struct {
	current func() []byte
	changed <-chan struct{}
	signer  func() (*x509.Certificate, crypto.Signer, error)
}

// controllers is the --controllers selection, less the local-path
// provisioner when local storage is disabled.
func controllers(cfg Config) []string {
	if !cfg.DisableLocalStorage {
		return cfg.Controllers
	}
	return append(slices.Clone(cfg.Controllers), "-"+localpath.Name)
}

// Their metrics (the scheduler's, the controllers' work queues) go to reg,
// which the API server serves at /metrics.
func startControllers(ctx context.Context, wg *sync.WaitGroup, inProcess *rest.Config, ids *loopbackIdentities, ca rootCA, cfg Config, reg prometheus.Registerer, bootstrapped <-chan struct{}) error {
	if _, err := manager.Enabled(cfg.Controllers); err != nil {
		return err
	}
	if cfg.LBPool != "" {
		if _, err := netip.ParsePrefix(cfg.LBPool); err != nil {
			return fmt.Errorf("--lb-pool: %w", err)
		}
	}
	sched, err := ids.config(inProcess, rbac.UserKubeScheduler)
	if err != nil {
		return err
	}
	if cfg.SchedulerLoopback != nil {
		cfg.SchedulerLoopback(rest.CopyConfig(sched))
	}
	if cfg.LeaderElection == (leader.Timing{}) {
		cfg.LeaderElection = leader.DefaultTiming
	}
	if err := cfg.LeaderElection.Validate(); err != nil {
		return err
	}
	// The Leases name the server's node: which server holds them.
	name, err := nodeName(cfg)
	if err != nil {
		return err
	}
	if !cfg.DisableScheduler {
		if err := startScheduler(ctx, wg, sched, scheduler.NewMetrics(reg, ""), leader.Identity(name), cfg.LeaderElection, bootstrapped); err != nil {
			return err
		}
	}
	reg.MustRegister(reconcile.Collectors()...)
	base := rest.CopyConfig(inProcess)
	base.QPS, base.Burst = 2000, 4000
	base.UserAgent = "skiff-controller-manager"
	client, err := ids.config(base, rbac.UserKubeController)
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-bootstrapped:
		case <-ctx.Done():
			return
		}
		err := manager.Run(ctx, manager.Config{
			Client: client,
			ClientFor: func(account string) (*rest.Config, error) {
				return ids.config(base, serviceAccountUser(account))
			},
			Controllers:            controllers(cfg),
			ClusterCIDR:            cfg.ClusterCIDR,
			LBPool:                 cfg.LBPool,
			CurrentRootCA:          ca.current,
			RootCAChanged:          ca.changed,
			NodeMonitorGracePeriod: cfg.NodeMonitorGracePeriod,
			HPASyncPeriod:          cfg.HPA.SyncPeriod,
			HPA: podautoscaler.Config{
				Tolerance:                    cfg.HPA.Tolerance,
				CPUInitializationPeriod:      cfg.HPA.CPUInitializationPeriod,
				InitialReadinessDelay:        cfg.HPA.InitialReadinessDelay,
				DownscaleStabilizationWindow: cfg.HPA.DownscaleStabilizationWindow,
			},
			SigningCA:       ca.signer,
			SigningDuration: cfg.CertValidity,
			LeaderElect:     true,
			Identity:        leader.Identity(name),
			LeaderElection:  cfg.LeaderElection,
		})
		if err != nil && ctx.Err() == nil {
			slog.Default().Error("controller-manager stopped", "err", err)
		}
	}()
	return nil
}
