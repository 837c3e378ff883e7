package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiff-io/skiff/internal/bench"
)

func newBenchRestartCommand() *cobra.Command {
	cfg := bench.RestartConfig{}
	cmd := &cobra.Command{
		Use:   "restart",
		Short: "Time for a server holding many objects to become ready again after a clean stop and after kill -9, and where that time goes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return bench.Restart(ctx, cfg, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Objects, "objects", 10000, "ConfigMaps the data dir holds (those missing are created through the API first)")
	f.IntVar(&cfg.Size, "size", 1024, "bytes of data in each ConfigMap")
	f.IntVar(&cfg.Clients, "clients", 64, "concurrent clients creating (and updating) the ConfigMaps")
	f.IntVar(&cfg.Restarts, "restarts", 5, "clean restarts (SIGTERM, then start) measured")
	f.IntVar(&cfg.Kills, "kills", 3, "kill -9 restarts measured")
	f.IntVar(&cfg.KillWrites, "kill-writes", 2000, "ConfigMaps updated just before each kill -9")
	f.StringVar(&cfg.Binary, "binary", "", "skiff binary to run as the server (default: this one)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "keep the server's state here, to grow or reuse it in a later run (default: a temp dir removed afterwards)")
	return cmd
}
