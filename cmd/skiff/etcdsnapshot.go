package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiff-io/skiff/internal/server"
)

func newEtcdSnapshotCommand() *cobra.Command {
	cfg := server.EtcdSnapshotConfig{DataDir: server.Defaults().DataDir, Retention: server.DefaultSnapshotRetention}
	cmd := &cobra.Command{
		Use:   "etcd-snapshot",
		Short: "Take, list, delete and prune snapshots of a server's embedded etcd (k3s's etcd-snapshot)",
		Long: `etcd-snapshot saves a snapshot of the etcd of the server running on
--data-dir, through the server's etcd member and with its etcd client
certificate, while it runs; and lists, deletes and prunes the snapshot
files in --dir. A snapshot is named <name>-<unix seconds>. Snapshots the
server takes on its schedule (--etcd-snapshot-schedule-cron) are the
series etcd-snapshot-<hostname>; save writes, and prune prunes, the
series on-demand-<hostname> unless --name says otherwise.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "the server's data directory (its etcd client certificate and member's client URL are there)")
	pf.StringVar(&cfg.Dir, "dir", "", "directory of the snapshots (default <data-dir>/snapshots)")
	pf.StringVar(&cfg.Name, "name", "", "name of the snapshot series save writes and prune prunes (default on-demand-<hostname>)")

	save := &cobra.Command{
		Use:   "save",
		Short: "Snapshot the running server's etcd and print the snapshot's path",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return server.EtcdSnapshotSave(ctx, cfg, c.OutOrStdout())
		},
	}
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Delete the snapshots of the --name series but the newest --snapshot-retention, and print their paths",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return server.EtcdSnapshotPrune(cfg, c.OutOrStdout())
		},
	}
	prune.Flags().IntVar(&cfg.Retention, "snapshot-retention", cfg.Retention, "how many snapshots of the series to keep")
	cmd.AddCommand(save, &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the snapshots, oldest first",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return server.EtcdSnapshotList(cfg, c.OutOrStdout())
		},
	}, &cobra.Command{
		Use:   "delete NAME...",
		Short: "Delete snapshots by name and print their paths",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return server.EtcdSnapshotDelete(cfg, args, c.OutOrStdout())
		},
	}, prune)
	return cmd
}
