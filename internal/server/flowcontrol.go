package server

import (
	"context"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/flowcontrol"
)

// newFlowControl returns API Priority and Fairness's controller for the
// API server, or nil when it is off (the in-flight bounds apply then). The
// Limited priority levels share the sum of the two in-flight bounds, as
// upstream's do.
func newFlowControl(cfg Config, reg prometheus.Registerer) *flowcontrol.Controller {
	if !cfg.EnablePriorityAndFairness {
		return nil
	}
	return flowcontrol.New(flowcontrol.Config{
		ServerConcurrencyLimit: cfg.MaxRequestsInFlight + cfg.MaxMutatingRequestsInFlight,
		Registerer:             reg,
		Logger:                 slog.Default(),
	})
}

// startFlowControl feeds fc the stored FlowSchemas and
// PriorityLevelConfigurations through the loopback client until ctx ends.
func startFlowControl(ctx context.Context, wg *sync.WaitGroup, fc *flowcontrol.Controller, loopback *rest.Config) error {
	if fc == nil {
		return nil
	}
	rc := rest.CopyConfig(loopback)
	rc.UserAgent = "skiff-flowcontrol"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := fc.Run(ctx, client); err != nil && ctx.Err() == nil {
			slog.Default().Error("API Priority and Fairness configuration stopped", "err", err)
		}
	}()
	return nil
}
