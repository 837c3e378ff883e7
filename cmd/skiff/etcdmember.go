package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiff-io/skiff/internal/server"
)

func newEtcdMemberCommand() *cobra.Command {
	cfg := server.EtcdMemberConfig{DataDir: server.Defaults().DataDir}
	cmd := &cobra.Command{
		Use:   "etcd-member",
		Short: "List the etcd members of a cluster of servers, or remove one",
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "a server's data directory (its admin.kubeconfig reaches the server)")
	pf.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig of a system:masters user (default <data-dir>/admin.kubeconfig)")
	signals := func() (context.Context, context.CancelFunc) {
		return signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the members: name (the server's node name), role, URLs",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, stop := signals()
			defer stop()
			return server.EtcdMemberList(ctx, cfg, c.OutOrStdout())
		},
	}, &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove the member of a server gone for good, so that it no longer counts towards the quorum and a new server may join under its name",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ctx, stop := signals()
			defer stop()
			return server.EtcdMemberRemove(ctx, cfg, args[0], c.OutOrStdout())
		},
	})
	return cmd
}
