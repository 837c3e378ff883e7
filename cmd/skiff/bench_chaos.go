package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-io/skiff/internal/bench"
)

func newBenchChaosCommand() *cobra.Command {
	cfg := bench.ChaosConfig{}
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Kill -9 a server under load again and again; check that no acknowledged write or watch event is lost and that histories are linearizable",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return bench.Chaos(ctx, cfg, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Cycles, "cycles", 100, "kill -9 and restart the server this many times")
	f.DurationVar(&cfg.MinUp, "min-up", 2*time.Second, "least time under load before each kill")
	f.DurationVar(&cfg.MaxUp, "max-up", 5*time.Second, "most time under load before each kill")
	f.IntVar(&cfg.Writers, "writers", 7, "concurrent writers (creates, updates and deletes of their own keys)")
	f.IntVar(&cfg.KeysPerWriter, "keys", 8, "keys each writer rewrites")
	f.IntVar(&cfg.Watchers, "watchers", 2, "watchers (every other one lags)")
	f.IntVar(&cfg.LinClients, "lin-clients", 6, "clients racing on the linearizability keys")
	f.IntVar(&cfg.LinKeys, "lin-keys", 3, "keys of the linearizability check")
	f.DurationVar(&cfg.LinTimeout, "lin-timeout", 10*time.Minute, "longest the linearizability check may take")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed of the workload's choices (0: random)")
	f.StringVar(&cfg.Binary, "binary", "", "skiff binary to run as the server (default: this one)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "keep the server's state here (default: a temp dir, removed unless a check fails)")
	return cmd
}
