package server

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/resourcemetrics"
)

// resourceMetrics is the usage the API server serves as metrics.k8s.io:
// a store the scraper fills from every Ready node's kubelet. Nil when
// --metric-resolution is 0.
type resourceMetrics struct {
	store    *resourcemetrics.Store
	interval time.Duration
}

func newResourceMetrics(cfg Config) *resourceMetrics {
	if cfg.MetricResolution <= 0 {
		return nil
	}
	return &resourceMetrics{store: resourcemetrics.NewStore(), interval: cfg.MetricResolution}
}

// source is what apiserver.Config.ResourceMetrics takes: nil (no API)
// when there is no store, never a typed nil.
func (m *resourceMetrics) source() apiserver.ResourceMetrics {
	if m == nil {
		return nil
	}
	return m.store
}

// start scrapes until ctx ends, asking api for the Ready nodes and
// reaching their kubelets with its client certificate.
func (m *resourceMetrics) start(ctx context.Context, wg *sync.WaitGroup, api *apiserver.Server, lg *slog.Logger) {
	if m == nil {
		return
	}
	s := &resourcemetrics.Scraper{
		Store: m.store,
		Nodes: api.ReadyNodes,
		Fetch: func(ctx context.Context, node *corev1.Node) (io.ReadCloser, error) {
			return api.KubeletGet(ctx, node, "/metrics/resource")
		},
		Interval: m.interval,
		Log:      lg.With("component", "resource-metrics"),
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = s.Run(ctx)
	}()
}
