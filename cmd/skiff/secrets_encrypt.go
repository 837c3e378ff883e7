package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiff-io/skiff/internal/server"
)

func newSecretsEncryptCommand() *cobra.Command {
	cfg := server.SecretsEncryptConfig{DataDir: server.Defaults().DataDir}
	cmd := &cobra.Command{
		Use:   "secrets-encrypt",
		Short: "Inspect and rotate the keys that encrypt Secrets at rest on a running server",
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "the server's data directory (its admin.kubeconfig reaches the server)")
	pf.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig of a system:masters user (default <data-dir>/admin.kubeconfig)")
	pf.StringVarP(&cfg.Output, "output", "o", "", "json for machine-readable output")
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Print whether Secrets are encrypted, the active key, and whether every Secret is stored under it",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return server.SecretsEncryptStatus(ctx, cfg, c.OutOrStdout())
		},
	}, &cobra.Command{
		Use:   "rotate-keys",
		Short: "Add a fresh key, rewrite every Secret under it, then remove the old key, while the server runs",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return server.SecretsEncryptRotateKeys(ctx, cfg, c.OutOrStdout())
		},
	})
	return cmd
}
