// Command skiff is a Kubernetes-compatible container orchestrator in one
// binary. main only builds the command tree; each subcommand's work lives
// in its own package.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-io/skiff/internal/agent"
	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/bench"
	"github.com/skiff-io/skiff/internal/controller/manager"
	"github.com/skiff-io/skiff/internal/image"
	"github.com/skiff-io/skiff/internal/residency"
	"github.com/skiff-io/skiff/internal/server"
	"github.com/skiff-io/skiff/internal/sim"
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
	root.AddCommand(newServerCommand(), newAgentCommand(), newSimCommand(), newBenchCommand(), newImageCommand(), newVersionCommand(), newSecretsEncryptCommand(), newCertificateCommand(), newTokenCommand(), newKillallCommand(), newUninstallCommand(), newEtcdMemberCommand())
	root.AddCommand(newEtcdSnapshotCommand())
	return root
}

// After start-up, a process gives back the pages of its binary that only
// start-up touched (internal/residency): a server startupSettle after it
// is ready, an agent agentStartupSettle after it starts (joining,
// registering and adopting its pods happen within it). From then on, each
// idle minute's free heap goes back too.
const (
	startupSettle      = 10 * time.Second
	agentStartupSettle = 30 * time.Second
)

func newServerCommand() *cobra.Command {
	cfg := server.Defaults()
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane (API server on etcd) and, unless disabled, the node agent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := server.SignalContext(server.ShutdownBound(cfg))
			defer stop()
			if cfg.Ready == nil {
				cfg.Ready = make(chan struct{})
			}
			go func() {
				residency.ReleaseAfter(ctx, cfg.Ready, startupSettle, slog.Default())
				residency.TrimWhileIdle(ctx, residency.IdleInterval)
			}()
			return server.Run(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for etcd data, TLS material and the kubeconfig")
	f.StringVar(&cfg.BindAddress, "bind-address", cfg.BindAddress, "address the API server listens on")
	f.IntVar(&cfg.HTTPSPort, "https-port", cfg.HTTPSPort, "port the API server listens on")
	f.StringVar(&cfg.WriteKubeconfig, "write-kubeconfig", "", "where to write the admin kubeconfig (default <data-dir>/admin.kubeconfig)")
	f.StringArrayVar(&cfg.TLSSANs, "tls-san", nil, "extra DNS name or IP for the serving certificate (repeatable)")
	// For tests: leaf certificates that live minutes, to see them renewed.
	f.DurationVar(&cfg.CertValidity, "cert-validity", 0, "lifetime of the leaf certificates issued (default a year); they are renewed two thirds into it")
	_ = f.MarkHidden("cert-validity")
	f.StringVar(&cfg.ServiceCIDR, "service-cidr", cfg.ServiceCIDR, "range of service cluster IPs")
	f.StringVar(&cfg.NodePortRange, "service-node-port-range", cfg.NodePortRange, "range of service node ports")
	f.StringSliceVar(&cfg.EtcdServers, "etcd-servers", nil, "client URLs of an external etcd cluster (default: embedded etcd)")
	f.StringVar(&cfg.EtcdCAFile, "etcd-cafile", "", "CA file verifying the external etcd servers")
	f.StringVar(&cfg.EtcdCertFile, "etcd-certfile", "", "client certificate for the external etcd")
	f.StringVar(&cfg.EtcdKeyFile, "etcd-keyfile", "", "client key for the external etcd")
	f.BoolVar(&cfg.ClusterInit, "cluster-init", false, "start the first server of a cluster of servers sharing an embedded etcd cluster; it writes the join string for the others to <data-dir>/token")
	f.StringVar(&cfg.Server, "server", "", "join the cluster of servers this server is part of (https://host:6443), with --token")
	f.StringVar(&cfg.Token, "token", "", "the server join string (K10...::server:..., from <data-dir>/token of a server of the cluster); with --cluster-init, the secret to use instead of a random one; with --etcd-servers, the secret the servers of that etcd share their CA and keys through it with (16 characters or more)")
	f.BoolVar(&cfg.ClusterReset, "cluster-reset", false, "make this server's etcd member a cluster of one, keeping its data (or restoring --cluster-reset-restore-path), then exit: how a cluster that lost its quorum is brought back")
	f.StringVar(&cfg.ClusterResetRestorePath, "cluster-reset-restore-path", "", "with --cluster-reset: an etcd snapshot (skiff etcd-snapshot save) to restore")
	f.BoolVar(&cfg.EtcdDisableSnapshots, "etcd-disable-snapshots", false, "take no scheduled snapshots of the embedded etcd")
	f.StringVar(&cfg.EtcdSnapshots.Cron, "etcd-snapshot-schedule-cron", cfg.EtcdSnapshots.Cron, "when to snapshot the embedded etcd: cron syntax (five fields), or @every 6h, @daily")
	f.IntVar(&cfg.EtcdSnapshots.Retention, "etcd-snapshot-retention", cfg.EtcdSnapshots.Retention, "how many scheduled snapshots to keep, the newest (0: all)")
	f.StringVar(&cfg.EtcdSnapshots.Dir, "etcd-snapshot-dir", "", "directory of the etcd snapshots (default <data-dir>/snapshots)")
	f.StringVar(&cfg.EtcdSnapshots.Name, "etcd-snapshot-name", "", "name of the scheduled snapshots' series (default etcd-snapshot-<hostname>)")
	f.StringVar(&cfg.TokenAuthFile, "token-auth-file", "", "static bearer tokens, CSV: token,user,uid,\"group1,group2\"")
	f.BoolVar(&cfg.DisableAgent, "disable-agent", false, "run the control plane only, no node agent")
	f.StringVar(&cfg.NodeName, "node-name", "", "name of this server's node (default: the hostname)")
	f.StringVar(&cfg.NodeIP, "node-ip", "", "address of this server's node (default: the API server's address)")
	f.IntVar(&cfg.KubeletPort, "kubelet-port", cfg.KubeletPort, "port of the kubelet's HTTPS server (0 picks one)")
	f.StringVar(&cfg.ContainerRuntimeEndpoint, "container-runtime-endpoint", "", "CRI socket to use (default: start containerd under <data-dir>/agent)")
	f.StringVar(&cfg.ResolvConf, "resolv-conf", "/etc/resolv.conf", "the node's resolver configuration: the cluster DNS's upstreams")
	f.StringSliceVar(&cfg.Controllers, "controllers", cfg.Controllers, "controllers to run: '*' for all, 'name' to add one, '-name' to leave one out; known: "+strings.Join(manager.Names(), ", "))
	f.BoolVar(&cfg.DisableScheduler, "disable-scheduler", false, "do not run the scheduler")
	f.BoolVar(&cfg.DisableLocalStorage, "disable-local-storage", false, "do not run the built-in local-path provisioner nor create its default StorageClass \"local-path\"")
	f.StringVar(&cfg.ClusterCIDR, "cluster-cidr", cfg.ClusterCIDR, "pod network; each node gets a /24 of it")
	f.StringVar(&cfg.NetworkBackend, "network-backend", cfg.NetworkBackend, networkBackendHelp)
	f.StringVar(&cfg.CgroupRoot, "cgroup-root", "", cgroupRootHelp)
	f.DurationVar(&cfg.LeaderElection.LeaseDuration, "leader-elect-lease-duration", cfg.LeaderElection.LeaseDuration, "how long the scheduler's and the controllers' Leases last unrenewed: with several servers, how soon a dead server's components are taken over")
	f.DurationVar(&cfg.LeaderElection.RenewDeadline, "leader-elect-renew-deadline", cfg.LeaderElection.RenewDeadline, "how long a Lease holder keeps trying to renew before it gives the Lease up (less than the lease duration)")
	f.DurationVar(&cfg.LeaderElection.RetryPeriod, "leader-elect-retry-period", cfg.LeaderElection.RetryPeriod, "how often a server tries to take or renew a Lease")
	f.DurationVar(&cfg.NodeMonitorGracePeriod, "node-monitor-grace-period", cfg.NodeMonitorGracePeriod, "how long a node may miss heartbeats before it is marked NotReady")
	f.StringVar(&cfg.LBPool, "lb-pool", cfg.LBPool, "range the built-in cloud provider gives Services of type LoadBalancer their ingress addresses from")
	f.BoolVar(&cfg.Profiling, "profiling", cfg.Profiling, "serve Go's profiles at /debug/pprof/ on the API server, to users allowed those non-resource URLs (cluster-admin)")
	f.DurationVar(&cfg.MetricResolution, "metric-resolution", cfg.MetricResolution, "how often every Ready node's kubelet is scraped for the CPU and memory usage served as metrics.k8s.io (kubectl top, autoscaling); 0 serves no metrics API")
	f.DurationVar(&cfg.HPA.SyncPeriod, "horizontal-pod-autoscaler-sync-period", cfg.HPA.SyncPeriod, "how often each HorizontalPodAutoscaler is reconciled")
	f.Float64Var(&cfg.HPA.Tolerance, "horizontal-pod-autoscaler-tolerance", cfg.HPA.Tolerance, "how far the usage ratio may stray from 1.0 before an HPA scales")
	f.DurationVar(&cfg.HPA.CPUInitializationPeriod, "horizontal-pod-autoscaler-cpu-initialization-period", cfg.HPA.CPUInitializationPeriod, "how long after a pod starts its CPU samples may be skipped")
	f.DurationVar(&cfg.HPA.InitialReadinessDelay, "horizontal-pod-autoscaler-initial-readiness-delay", cfg.HPA.InitialReadinessDelay, "how soon after a pod starts a readiness change still counts as its first")
	f.DurationVar(&cfg.HPA.DownscaleStabilizationWindow, "horizontal-pod-autoscaler-downscale-stabilization", cfg.HPA.DownscaleStabilizationWindow, "how far back an HPA without its own scale-down window looks for a higher recommendation before scaling down")
	f.StringVar(&cfg.AuthorizationMode, "authorization-mode", cfg.AuthorizationMode, "comma-separated, in order (the first to allow wins): Node (kubelets read only what their pods use), RBAC (upstream's roles and bindings enforced), AlwaysAllow (every authenticated user may do everything), AlwaysDeny; e.g. Node,RBAC")
	f.DurationVar(&cfg.RequestTimeout, "request-timeout", cfg.RequestTimeout, "how long a request that is not long-running (watch, exec, logs) may take, reading its body included; ?timeout= may shorten it")
	f.IntVar(&cfg.MaxRequestsInFlight, "max-requests-inflight", cfg.MaxRequestsInFlight, "reads served at once before further ones get 429 (0: no limit; system:masters is never refused)")
	f.IntVar(&cfg.MaxMutatingRequestsInFlight, "max-mutating-requests-inflight", cfg.MaxMutatingRequestsInFlight, "writes served at once before further ones get 429 (0: no limit; system:masters is never refused)")
	f.BoolVar(&cfg.EnablePriorityAndFairness, "enable-priority-and-fairness", cfg.EnablePriorityAndFairness, "admit requests by API Priority and Fairness (FlowSchemas and PriorityLevelConfigurations sharing the sum of the two in-flight limits) instead of by the in-flight limits")
	f.StringVar(&cfg.EncryptionProviderConfig, "encryption-provider-config", "", "EncryptionConfiguration file (apiserver.config.k8s.io/v1): which resources are encrypted at rest in etcd, with which providers and keys")
	f.BoolVar(&cfg.EncryptionProviderConfigAutomaticReload, "encryption-provider-config-automatic-reload", false, "pick up changes to --encryption-provider-config without a restart")
	f.BoolVar(&cfg.SecretsEncryption, "secrets-encryption", false, "encrypt Secrets at rest with a key generated on first start (<data-dir>/cred/encryption-config.yaml); rotate it with 'skiff secrets-encrypt rotate-keys'")
	f.StringVar(&cfg.SecretsEncryptionProvider, "secrets-encryption-provider", cfg.SecretsEncryptionProvider, "provider of the key --secrets-encryption generates: secretbox or aescbc (an existing configuration keeps its own)")
	f.DurationVar(&cfg.ShutdownDelayDuration, "shutdown-delay-duration", cfg.ShutdownDelayDuration, "after SIGTERM, keep serving this long with /readyz failing before no longer accepting requests (time for load balancers to take the server out)")
	f.BoolVar(&cfg.ShutdownSendRetryAfter, "shutdown-send-retry-after", cfg.ShutdownSendRetryAfter, "when shutting down, keep listening until the requests in flight have finished, answering new ones 429 with Retry-After and Connection: close")
	f.StringVar(&cfg.AuditPolicyFile, "audit-policy-file", "", "audit Policy file (audit.k8s.io/v1, YAML or JSON): which requests are audited, at which level; without it nothing is audited")
	f.StringVar(&cfg.AuditLogPath, "audit-log-path", "", "file the audit events are written to, one JSON object a line; '-' means standard output")
	f.IntVar(&cfg.AuditLogMaxAge, "audit-log-maxage", 0, "days to keep rotated audit log files (0: no limit)")
	f.IntVar(&cfg.AuditLogMaxBackup, "audit-log-maxbackup", 0, "rotated audit log files to keep (0: all)")
	f.IntVar(&cfg.AuditLogMaxSize, "audit-log-maxsize", 0, "size in megabytes at which the audit log is rotated (0: 100)")
	f.BoolVar(&cfg.AuditLogCompress, "audit-log-compress", false, "gzip the rotated audit log files")
	return cmd
}

func newAgentCommand() *cobra.Command {
	cfg := agent.JoinConfig{DataDir: "/var/lib/skiff", KubeletPort: 10250, Version: apiserver.Version.GitVersion}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node (containerd, kubelet) that joins a skiff server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The agent's data dir holds its containerd's state: one
			// process at a time, as the server's.
			lock, err := server.LockDataDir(cfg.DataDir)
			if err != nil {
				return err
			}
			defer lock.Release()
			ctx, stop := server.SignalContext(agentShutdownBound)
			defer stop()
			go func() {
				residency.ReleaseAfter(ctx, nil, agentStartupSettle, slog.Default())
				residency.TrimWhileIdle(ctx, residency.IdleInterval)
			}()
			return agent.Join(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Server, "server", "", "URL of the API server (https://host:6443)")
	f.StringVar(&cfg.Token, "token", os.Getenv("SKIFF_TOKEN"), "bearer token the server accepts for this node (default $SKIFF_TOKEN)")
	f.StringVar(&cfg.CAFile, "ca-file", "", "the cluster CA (<server data-dir>/tls/ca.crt); without it the CA is fetched unverified once")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for the agent's state and the images to import")
	f.StringVar(&cfg.NodeName, "node-name", "", "name of this node (default: the hostname)")
	f.StringVar(&cfg.NodeIP, "node-ip", "", "address of this node (default: the address that reaches the server)")
	f.IntVar(&cfg.KubeletPort, "kubelet-port", cfg.KubeletPort, "port of the kubelet's HTTPS server (0 picks one)")
	f.StringVar(&cfg.RuntimeEndpoint, "container-runtime-endpoint", "", "CRI socket to use (default: start containerd under <data-dir>/agent)")
	f.StringVar(&cfg.Bridge, "bridge", "skiff0", "Linux bridge of the pod network (one per node on a machine)")
	f.StringVar(&cfg.NetworkBackend, "network-backend", "vxlan", networkBackendHelp)
	f.StringVar(&cfg.CgroupRoot, "cgroup-root", "", cgroupRootHelp)
	f.StringVar(&cfg.ClusterCIDR, "cluster-cidr", "10.42.0.0/16", "pod network of the cluster (the proxy masquerades traffic from outside it)")
	f.StringVar(&cfg.ResolvConf, "resolv-conf", "/etc/resolv.conf", "resolver configuration: the cluster DNS's upstreams")
	f.BoolVar(&cfg.DisableProxy, "disable-proxy", false, "do not run the service proxy (another node on this machine does)")
	f.BoolVar(&cfg.DisableDNS, "disable-dns", false, "do not run the node-local cluster DNS (another node on this machine does)")
	return cmd
}

const networkBackendHelp = "how pods reach pods on other nodes: vxlan (an overlay, across routed networks), host-gw (routes through the other nodes' addresses; the nodes must share a link) or none"

const cgroupRootHelp = "cgroup the pods' kubepods hierarchy is made in (default the root); several nodes on one machine need one each"

// agentShutdownBound is how long `skiff agent` may take to exit once
// told to (its kubelet, proxy and containerd stopping) before it exits
// all the same.
const agentShutdownBound = time.Minute

func newImageCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage the container images of this node's containerd"}
	var cfg image.ImportConfig
	imp := &cobra.Command{
		Use:   "import FILE...",
		Short: "Import OCI-layout or docker-archive tarballs into the node agent's containerd (namespace k8s.io)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			cfg.Files = args
			return image.RunImport(ctx, cfg, cmd.OutOrStdout())
		},
	}
	f := imp.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", image.DefaultDataDir, "skiff's data directory; the socket is <data-dir>/agent/containerd/containerd.sock")
	f.StringVar(&cfg.Address, "address", "", "containerd socket (overrides --data-dir)")
	cmd.AddCommand(imp)
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

func newSimCommand() *cobra.Command {
	cfg := sim.Defaults()
	var kubeconfig string
	var taints []string
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run simulated nodes: they register, heartbeat and \"run\" the pods bound to them (for tests and benchmarks; no containers)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, s := range taints {
				t, err := sim.ParseTaint(s)
				if err != nil {
					return err
				}
				cfg.Taints = append(cfg.Taints, t)
			}
			rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return fmt.Errorf("--kubeconfig: %w", err)
			}
			rc.QPS, rc.Burst = -1, 0
			rc.ContentType = "application/vnd.kubernetes.protobuf"
			rc.UserAgent = "skiff-sim"
			client, err := kubernetes.NewForConfig(rc)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return sim.Run(ctx, client, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster to join")
	f.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "how many nodes to register")
	f.StringVar(&cfg.NamePrefix, "name-prefix", cfg.NamePrefix, "node names are this prefix plus an index")
	f.StringVar(&cfg.CPU, "cpu", cfg.CPU, "each node's cpu capacity")
	f.StringVar(&cfg.Memory, "memory", cfg.Memory, "each node's memory capacity")
	f.StringVar(&cfg.Pods, "pods", cfg.Pods, "each node's pod capacity")
	f.StringToStringVar(&cfg.Labels, "labels", nil, "labels for every node (k=v,...)")
	f.IntVar(&cfg.ZoneCount, "zones", 0, "spread nodes over this many topology.kubernetes.io/zone values")
	f.StringArrayVar(&taints, "taint", nil, "taint for every node, key[=value]:Effect (repeatable)")
	f.DurationVar(&cfg.StartDelay, "start-delay", cfg.StartDelay, "time from binding to Running and Ready")
	f.DurationVar(&cfg.RunTime, "run-time", cfg.RunTime, "how long pods with restartPolicy Never/OnFailure run before they complete")
	f.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", cfg.HeartbeatInterval, "how often each node renews its Lease")
	f.StringArrayVar(&cfg.KillNodes, "kill-node", nil, "a node that registers but never heartbeats (repeatable)")
	f.BoolVar(&cfg.RunPods, "run-pods", cfg.RunPods, "run the pods bound to the nodes (false: leave them Pending)")
	f.IntVar(&cfg.KubeletPort, "kubelet-port", cfg.KubeletPort, "port every node's kubelet endpoint (/metrics/resource, /healthz) is served on, for all nodes at once; 0 picks a free port, as does a port in use; negative serves none")
	f.StringVar(&cfg.ClientCAFile, "client-ca-file", cfg.ClientCAFile, "CA certificates (PEM) the kubelet endpoint verifies client certificates against (default: the CA --kubeconfig trusts)")
	f.Float64Var(&cfg.UsageFraction, "usage-fraction", cfg.UsageFraction, "share of its cpu and memory requests each container uses, unless the pod's "+sim.AnnotationCPUUsage+" / "+sim.AnnotationMemoryUsage+" annotations say how much")
	return cmd
}

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure a whole control plane run in this process"}
	cfg := bench.SchedulerConfig{Nodes: 1000, Pods: 10000}
	var cpuProfile, debugAddr string
	sched := &cobra.Command{
		Use:   "scheduler",
		Short: "Pods scheduled per second, create-to-bound latency and memory with simulated nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			if debugAddr != "" {
				http.Handle("/metrics", promhttp.Handler())             // embedded etcd's metrics
				go func() { _ = http.ListenAndServe(debugAddr, nil) }() // and net/http/pprof
			}
			return bench.Scheduler(ctx, cfg, cmd.OutOrStdout())
		},
	}
	f := sched.Flags()
	f.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "simulated nodes")
	f.IntVar(&cfg.Pods, "pods", cfg.Pods, "pods to schedule")
	f.IntVar(&cfg.Writers, "writers", 32, "concurrent pod creators")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	f.StringVar(&cfg.DataDir, "data-dir", "", "keep the server's state here (default: a temp dir removed afterwards)")
	f.StringVar(&debugAddr, "debug-addr", "", "serve Go's net/http/pprof on this loopback address while the bench runs")
	f.BoolVar(&cfg.Backlog, "backlog", false, "create every pod first, then start the scheduler (measures the scheduler alone)")
	cmd.AddCommand(sched, newBenchPodsCommand(), newBenchDNSCommand(), newBenchChaosCommand(), newBenchFlowControlCommand(), newBenchRestartCommand())
	return cmd
}

func newBenchDNSCommand() *cobra.Command {
	cfg := bench.DNSConfig{Clients: 8, Duration: 5 * time.Second}
	cmd := &cobra.Command{
		Use:   "dns",
		Short: "Queries per second and latency of the cluster DNS, for cluster and forwarded names (fake upstream)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return bench.DNS(ctx, cfg, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Clients, "clients", cfg.Clients, "concurrent clients, one query at a time each")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long each name is queried")
	return cmd
}

func newBenchPodsCommand() *cobra.Command {
	cfg := bench.PodsConfig{Pods: 100, Concurrency: 1, Image: "docker.io/library/busybox:1.36", Command: []string{"sleep", "3600"}}
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "pods",
		Short: "Create-to-Ready latency of real pods on a running cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return err
			}
			rc.QPS, rc.Burst = -1, 0
			client, err := kubernetes.NewForConfig(rc)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return bench.Pods(ctx, client, cfg, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	f.IntVar(&cfg.Pods, "pods", cfg.Pods, "pods to create")
	f.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "pods created at once (1: one after the other)")
	f.StringVar(&cfg.Image, "image", cfg.Image, "image of the pods (must be on the node)")
	f.StringSliceVar(&cfg.Command, "command", cfg.Command, "command of the pods")
	f.StringVar(&cfg.Namespace, "namespace", "default", "namespace of the pods")
	f.BoolVar(&cfg.Keep, "keep", false, "leave the pods running")
	return cmd
}
