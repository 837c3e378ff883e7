package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiff-io/skiff/internal/cleanup"
	"github.com/skiff-io/skiff/internal/server"
)

// newKillallCommand and newUninstallCommand are `skiff killall` and
// `skiff uninstall`: stopping a node together with its pods, which
// stopping `skiff server` leaves running on purpose.
func newKillallCommand() *cobra.Command {
	cfg := cleanup.Config{DataDir: server.Defaults().DataDir}
	cmd := &cobra.Command{
		Use:   "killall",
		Short: "Stop the skiff server or agent of a data dir, its pods and its containerd, and remove its mounts, bridge, network namespaces and nftables table (the data stays)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			cfg.Out = cmd.OutOrStdout()
			return cleanup.KillAll(ctx, cfg)
		},
	}
	cleanupFlags(cmd, &cfg)
	return cmd
}

func newUninstallCommand() *cobra.Command {
	cfg := cleanup.Config{DataDir: server.Defaults().DataDir}
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Run killall, then remove the data dir (etcd data, certificates, images: everything)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			cfg.Out = cmd.OutOrStdout()
			return cleanup.Uninstall(ctx, cfg)
		},
	}
	cleanupFlags(cmd, &cfg)
	return cmd
}

func cleanupFlags(cmd *cobra.Command, cfg *cleanup.Config) {
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data dir of the skiff server or agent")
	f.StringVar(&cfg.Bridge, "bridge", "", "pod bridge to delete when the data dir's CNI config does not name one")
	f.DurationVar(&cfg.Grace, "grace-period", 0, "time containers get between SIGTERM and SIGKILL (default 10s)")
}
