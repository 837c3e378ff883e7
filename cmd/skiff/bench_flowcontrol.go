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

func newBenchFlowControlCommand() *cobra.Command {
	cfg := bench.FlowControlConfig{}
	cmd := &cobra.Command{
		Use:   "flowcontrol",
		Short: "Another user's GET latency and the scheduler's binding rate, without and then with one user flooding LISTs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return bench.FlowControl(ctx, cfg, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&cfg.APF, "enable-priority-and-fairness", true, "run the server with API Priority and Fairness (false: the max-in-flight bounds)")
	f.IntVar(&cfg.Nodes, "nodes", 1000, "simulated nodes")
	f.IntVar(&cfg.Pods, "pods", 10000, "pods stored (bound to the nodes), which the flood lists")
	f.IntVar(&cfg.Flooders, "flooders", 50, "the flooding user's concurrent LIST clients")
	f.DurationVar(&cfg.Duration, "duration", 30*time.Second, "length of each phase (without, then with the flood)")
	f.DurationVar(&cfg.Warmup, "warmup", 5*time.Second, "first part of each phase not counted")
	f.IntVar(&cfg.CreateRate, "create-rate", 100, "pods per second created for the scheduler during each phase")
	f.DurationVar(&cfg.GetPause, "get-pause", 10*time.Millisecond, "the other user's pause between two GETs")
	f.StringVar(&cfg.DataDir, "data-dir", "", "keep the server's state here (default: a temp dir removed afterwards)")
	return cmd
}
