// Command crwatch is a small operator built on controller-runtime, run by
// skiff's end-to-end tests as a real third-party client of the API server.
//
// It lives in its own Go module so that controller-runtime and its
// dependencies never enter skiff's go.mod. A manager caches the ConfigMaps
// of one namespace; for every ConfigMap labelled crwatch=on the reconciler
// writes the annotation crwatch.skiff.io/seen=<hash of the data> through
// server-side apply (field manager "crwatch"), or through a JSON merge
// patch with --patch=merge. Only the holder of the Lease named by
// --lease-name reconciles, so running two copies exercises leader election.
//
// Each reconcile that writes logs "annotated" with the ConfigMap and the
// hash; the tests read these lines.
//
// With --widgets it also reconciles the Widgets of crwatch.skiff.io/v1, a
// custom resource with a status subresource (widgets.go).
//
// With --webhooks it is instead a webhook server for Widgets, meant to run
// in a pod behind a Service: controller-runtime's webhook server on
// --webhook-port, with the tls.crt and tls.key of --cert-dir, serving the
// mutating webhook /mutate-widget, the validating webhooks
// /validate-widget and /slow (admission.go), and the CRD conversion
// webhook /convert between crwatch.skiff.io/v1 and v2 (convert.go). This
// mode runs no manager and loads no kubeconfig: it never calls the API
// server, so its pod needs no RBAC at all. It serves until SIGTERM; each
// request logs one "webhook" line with its path, the object's name and the
// decision.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// config is crwatch's command line.
type config struct {
	namespace     string
	name          string
	leaseName     string
	leaseDuration time.Duration
	renewDeadline time.Duration
	retryPeriod   time.Duration
	patch         string
	widgets       bool
	webhooks      bool
	webhookPort   int
	certDir       string
}

func main() {
	var cfg config
	// --kubeconfig is controller-runtime's own flag (pkg/client/config).
	flag.StringVar(&cfg.namespace, "namespace", "default", "namespace whose ConfigMaps are watched; it also holds the Lease")
	flag.StringVar(&cfg.name, "name", "crwatch", "this instance's name in its log lines (the Lease holder is controller-runtime's <hostname>_<uid>)")
	flag.StringVar(&cfg.leaseName, "lease-name", "crwatch", "name of the leader election Lease")
	flag.DurationVar(&cfg.leaseDuration, "lease-duration", 15*time.Second, "leader election lease duration")
	flag.DurationVar(&cfg.renewDeadline, "renew-deadline", 10*time.Second, "leader election renew deadline")
	flag.DurationVar(&cfg.retryPeriod, "retry-period", 2*time.Second, "leader election retry period")
	flag.StringVar(&cfg.patch, "patch", "apply", "how the annotation is written: apply (server-side apply) or merge (JSON merge patch)")
	flag.BoolVar(&cfg.widgets, "widgets", false, "also reconcile the Widgets (crwatch.skiff.io/v1) of the namespace: an owned ConfigMap each, and their status")
	flag.BoolVar(&cfg.webhooks, "webhooks", false, "serve only the Widget admission and conversion webhooks (no reconcilers, no API access) until SIGTERM")
	flag.IntVar(&cfg.webhookPort, "webhook-port", 9443, "with --webhooks: the HTTPS port of the webhook server")
	flag.StringVar(&cfg.certDir, "cert-dir", "/certs", "with --webhooks: directory holding the serving certificate tls.crt and its key tls.key")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("instance", cfg.name)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("crwatch failed", "err", err)
		os.Exit(1)
	}
	log.Info("crwatch stopped")
}

// run starts the manager, or with --webhooks the webhook server, and
// blocks until ctx ends and it has stopped (the manager having released
// the Lease if it held it).
func run(ctx context.Context, cfg config, log *slog.Logger) error {
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	if cfg.webhooks {
		if cfg.widgets {
			return fmt.Errorf("--webhooks serves only the webhooks: it does not combine with --widgets")
		}
		return serveWebhooks(ctx, cfg, log)
	}
	if cfg.patch != "apply" && cfg.patch != "merge" {
		return fmt.Errorf("--patch=%q: want apply or merge", cfg.patch)
	}
	rc, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	mgr, err := ctrl.NewManager(rc, ctrl.Options{
		Cache:                         cache.Options{DefaultNamespaces: map[string]cache.Config{cfg.namespace: {}}},
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                true,
		LeaderElectionResourceLock:    "leases",
		LeaderElectionNamespace:       cfg.namespace,
		LeaderElectionID:              cfg.leaseName,
		LeaderElectionReleaseOnCancel: true, // run returns as soon as the manager stops
		LeaseDuration:                 &cfg.leaseDuration,
		RenewDeadline:                 &cfg.renewDeadline,
		RetryPeriod:                   &cfg.retryPeriod,
		Logger:                        logr.FromSlogHandler(log.Handler()),
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	r := &reconciler{client: mgr.GetClient(), log: log, merge: cfg.patch == "merge"}
	if err := r.setup(mgr); err != nil {
		return err
	}
	if cfg.widgets {
		w := &widgetReconciler{client: mgr.GetClient(), log: log}
		if err := w.setup(mgr); err != nil {
			return err
		}
	}
	go func() {
		// Elected() closes when this instance holds the Lease; the
		// goroutine ends with the manager either way.
		select {
		case <-mgr.Elected():
			log.Info("elected leader", "lease", cfg.namespace+"/"+cfg.leaseName)
		case <-ctx.Done():
		}
	}()
	log.Info("starting manager", "namespace", cfg.namespace, "patch", cfg.patch, "widgets", cfg.widgets)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	return nil
}
