// Command skiff is a Kubernetes-compatible container orchestrator in one
// binary. main only builds the command tree; each subcommand's work lives
// in its own package.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/controller/manager"
	"github.com/skiff-io/skiff/internal/server"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	var verbose bool
	root := &cobra.Command{
		Use:           "skiff",
		Short:         "A Kubernetes-compatible container orchestrator in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(*cobra.Command, []string) {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
		},
	}
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "log at debug level")
	root.AddCommand(newServerCommand(), newVersionCommand())
	return root
}

func newServerCommand() *cobra.Command {
	cfg := server.Defaults()
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane (API server on etcd) and, unless disabled, the node agent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			if !cfg.DisableAgent {
				slog.Warn("the node agent is not built yet; running the control plane only (as with --disable-agent)")
			}
			return server.Run(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for etcd data, TLS material and the kubeconfig")
	f.StringVar(&cfg.BindAddress, "bind-address", cfg.BindAddress, "address the API server listens on")
	f.IntVar(&cfg.HTTPSPort, "https-port", cfg.HTTPSPort, "port the API server listens on")
	f.StringVar(&cfg.WriteKubeconfig, "write-kubeconfig", "", "where to write the admin kubeconfig (default <data-dir>/admin.kubeconfig)")
	f.StringArrayVar(&cfg.TLSSANs, "tls-san", nil, "extra DNS name or IP for the serving certificate (repeatable)")
	f.StringVar(&cfg.ServiceCIDR, "service-cidr", cfg.ServiceCIDR, "range of service cluster IPs")
	f.StringVar(&cfg.NodePortRange, "service-node-port-range", cfg.NodePortRange, "range of service node ports")
	f.StringSliceVar(&cfg.EtcdServers, "etcd-servers", nil, "client URLs of an external etcd cluster (default: embedded etcd)")
	f.StringVar(&cfg.EtcdCAFile, "etcd-cafile", "", "CA file verifying the external etcd servers")
	f.StringVar(&cfg.EtcdCertFile, "etcd-certfile", "", "client certificate for the external etcd")
	f.StringVar(&cfg.EtcdKeyFile, "etcd-keyfile", "", "client key for the external etcd")
	f.StringVar(&cfg.TokenAuthFile, "token-auth-file", "", "static bearer tokens, CSV: token,user,uid,\"group1,group2\"")
	f.BoolVar(&cfg.DisableAgent, "disable-agent", false, "run the control plane only, no node agent")
	f.StringSliceVar(&cfg.Controllers, "controllers", cfg.Controllers, "controllers to run: '*' for all, 'name' to add one, '-name' to leave one out; known: "+strings.Join(manager.Names(), ", "))
	f.BoolVar(&cfg.DisableScheduler, "disable-scheduler", false, "do not run the scheduler")
	f.StringVar(&cfg.ClusterCIDR, "cluster-cidr", cfg.ClusterCIDR, "pod network; each node gets a /24 of it")
	f.DurationVar(&cfg.NodeMonitorGracePeriod, "node-monitor-grace-period", cfg.NodeMonitorGracePeriod, "how long a node may miss heartbeats before it is marked NotReady")
	return cmd
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the skiff version and the Kubernetes API level it serves",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			v := apiserver.Version
			fmt.Fprintf(cmd.OutOrStdout(), "skiff %s (Kubernetes API %s.%s, %s, %s)\n", SkiffVersion, v.Major, v.Minor, v.GoVersion, v.Platform)
		},
	}
}

// SkiffVersion is set at build time with -ldflags "-X main.SkiffVersion=...".
var SkiffVersion = "dev"
