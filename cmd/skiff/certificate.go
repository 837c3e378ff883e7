package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiff-io/skiff/internal/server"
)

func newCertificateCommand() *cobra.Command {
	cfg := server.CertificateConfig{DataDir: server.Defaults().DataDir}
	cmd := &cobra.Command{
		Use:   "certificate",
		Short: "Inspect the certificates of a running server and replace its CA",
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "the server's data directory (its admin.kubeconfig reaches the server)")
	pf.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig of a system:masters user (default <data-dir>/admin.kubeconfig)")
	pf.StringVarP(&cfg.Output, "output", "o", "", "json for machine-readable output")
	run := func(f func(context.Context, server.CertificateConfig, *cobra.Command) error) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return f(ctx, cfg, c)
		}
	}
	rotate := &cobra.Command{
		Use:   "rotate-ca",
		Short: "Replace the cluster CA: reissue every certificate under a new CA, trusting both CAs for --overlap",
		Long: `rotate-ca has the running server make a new cluster CA and reissue every
certificate it keeps under it, at once and without a restart. For --overlap
both CAs are trusted: clients that hold the old CA still verify the server
(its certificate comes with the new CA cross-signed by the old one), and
certificates of the old CA are still accepted. The admin kubeconfig,
kube-public/cluster-info and every namespace's kube-root-ca.crt carry both.
When the overlap ends only the new CA is trusted.`,
		Args: cobra.NoArgs,
		RunE: run(func(ctx context.Context, cfg server.CertificateConfig, c *cobra.Command) error {
			return server.CertificateRotateCA(ctx, cfg, c.OutOrStdout())
		}),
	}
	rotate.Flags().DurationVar(&cfg.Overlap, "overlap", server.DefaultCAOverlap, "how long certificates of the old CA stay trusted")
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Print the CA in force, the CAs trusted, and when each certificate expires and is renewed",
		Args:  cobra.NoArgs,
		RunE: run(func(ctx context.Context, cfg server.CertificateConfig, c *cobra.Command) error {
			return server.CertificateStatusCmd(ctx, cfg, c.OutOrStdout())
		}),
	}, rotate)
	return cmd
}
