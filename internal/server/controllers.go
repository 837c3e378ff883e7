package server

import (
	"log/slog"
	"sync"

	"context"

	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/controller/namespace"
)

// startControllers starts the controllers that run inside `skiff server`,
// each a client of the API over the loopback connection.
func startControllers(ctx context.Context, wg *sync.WaitGroup, loopback *rest.Config, _ Config) error {
	nc, err := namespace.New(loopback)
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := nc.Start(ctx); err != nil && ctx.Err() == nil {
			slog.Default().Error("namespace controller stopped", "err", err)
		}
	}()
	return nil
}
