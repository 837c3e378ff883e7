package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiff-io/skiff/internal/bootstraptoken/tokencmd"
	"github.com/skiff-io/skiff/internal/server"
)

func newTokenCommand() *cobra.Command {
	cfg := tokencmd.Config{DataDir: server.Defaults().DataDir}
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and delete the bootstrap tokens that join nodes (kubeadm's token commands)",
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "the server's data directory (its admin.kubeconfig reaches the server)")
	pf.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig of a user that may manage Secrets in kube-system (default <data-dir>/admin.kubeconfig)")
	run := func(f func(ctx context.Context, c *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return f(ctx, c, args)
		}
	}
	create := &cobra.Command{
		Use:   "create [token]",
		Short: "Create a bootstrap token and print its join string (last line)",
		Long: `create stores a bootstrap token as the Secret kube-system/bootstrap-token-<id>
(usages authentication and signing) and prints, as its last line, the join
string

  K10<sha256 of the cluster CA's public key>::<id>.<secret>

The hash is kubeadm's --discovery-token-ca-cert-hash (without "sha256:") of
the CA that signs the server's certificate. [token] is the token to store,
of the form [a-z0-9]{6}.[a-z0-9]{16}; without it a random one is made.`,
		Args: cobra.MaximumNArgs(1),
		RunE: run(func(ctx context.Context, c *cobra.Command, args []string) error {
			if len(args) == 1 {
				cfg.Token = args[0]
			}
			return tokencmd.Create(ctx, cfg, c.OutOrStdout())
		}),
	}
	f := create.Flags()
	f.DurationVar(&cfg.TTL, "ttl", tokencmd.DefaultTTL, "how long the token lives ('0' for ever)")
	f.StringVar(&cfg.Description, "description", "", "what the token is for, shown by 'skiff token list'")
	f.StringSliceVar(&cfg.Groups, "groups", nil, "extra groups the token authenticates in besides system:bootstrappers; each system:bootstrappers:<name>")
	cmd.AddCommand(create, &cobra.Command{
		Use:   "list",
		Short: "List the bootstrap tokens",
		Args:  cobra.NoArgs,
		RunE: run(func(ctx context.Context, c *cobra.Command, _ []string) error {
			return tokencmd.List(ctx, cfg, c.OutOrStdout(), c.ErrOrStderr())
		}),
	}, &cobra.Command{
		Use:   "delete <id or id.secret>...",
		Short: "Delete bootstrap tokens",
		Args:  cobra.MinimumNArgs(1),
		RunE: run(func(ctx context.Context, c *cobra.Command, args []string) error {
			return tokencmd.Delete(ctx, cfg, args, c.OutOrStdout())
		}),
	})
	return cmd
}
