// Package server runs `skiff server`: TLS material, etcd (embedded or
// external), the API server and, talking to it through client-go like any
// other client (in process: see apiserver.InProcessTransport), the
// components that run beside it.
package server

import (
	"net/netip"
	"time"

	"k8s.io/client-go/rest"

	"github.com/skiff-io/skiff/internal/apiserver"
	"github.com/skiff-io/skiff/internal/leader"
)

// Config is `skiff server`'s configuration, filled from its flags.
type Config struct {
	DataDir         string
	BindAddress     string
	HTTPSPort       int
	WriteKubeconfig string
	TLSSANs         []string
	ServiceCIDR     string
	NodePortRange   string

	EtcdServers  []string
	EtcdCAFile   string
	EtcdCertFile string
	EtcdKeyFile  string

	// ClusterInit starts the first server of a cluster of servers: its
	// embedded etcd member listens for others on the node address
	// (--cluster-init). Server and Token join such a cluster: the URL of
	// one of its servers and the server join string of its
	// <data-dir>/token (--server, --token). See cluster.go.
	ClusterInit   bool
	Server, Token string
	// ClusterReset restarts this server's etcd member as a cluster of
	// one, from its data (a cluster that lost its quorum), or from the
	// snapshot ClusterResetRestorePath (--cluster-reset,
	// --cluster-reset-restore-path).
	ClusterReset            bool
	ClusterResetRestorePath string

	// EtcdSnapshots schedules snapshots of the embedded etcd
	// (--etcd-snapshot-schedule-cron, --etcd-snapshot-retention,
	// --etcd-snapshot-dir, --etcd-snapshot-name), unless
	// EtcdDisableSnapshots (--etcd-disable-snapshots).
	EtcdSnapshots        SnapshotSchedule
	EtcdDisableSnapshots bool

	// TokenAuthFile is a static token file (token,user,uid,"groups").
	TokenAuthFile string
	// DisableAgent runs the control plane only: no kubelet, no containerd.
	DisableAgent bool
	// NodeName is the name the server's own node registers as (the
	// hostname when empty); NodeIP its address (the bind address when
	// empty); KubeletPort the kubelet's HTTPS port.
	NodeName    string
	NodeIP      string
	KubeletPort int
	// ContainerRuntimeEndpoint is a CRI socket to use instead of a
	// containerd started by skiff.
	ContainerRuntimeEndpoint string
	// ResolvConf is the node's resolver configuration: the upstreams of
	// the cluster DNS ("/etc/resolv.conf").
	ResolvConf string

	// Controllers selects the controllers to run (--controllers: "*",
	// "name", "-name"); empty runs none.
	Controllers []string
	// DisableScheduler leaves the scheduler out.
	DisableScheduler bool
	// DisableLocalStorage leaves out the built-in local-path provisioner
	// and its default StorageClass (--disable-local-storage).
	DisableLocalStorage bool
	// ClusterCIDR is the pod network; each node gets a /24 of it.
	ClusterCIDR string
	// NetworkBackend is how the server's node reaches pods on other nodes:
	// vxlan (default), host-gw or none (internal/podnet).
	NetworkBackend string
	// CgroupRoot is where the server's node makes its pods' kubepods
	// cgroups (upstream's --cgroup-root); "" is the root.
	CgroupRoot string
	// LeaderElection is how the scheduler and the controllers hold their
	// Leases (--leader-elect-lease-duration, --leader-elect-renew-deadline,
	// --leader-elect-retry-period): with several servers, a dead
	// holder's components are taken over within the lease duration.
	LeaderElection leader.Timing
	// NodeMonitorGracePeriod is how long a node may miss heartbeats
	// before it is marked NotReady.
	NodeMonitorGracePeriod time.Duration
	// LBPool is the range the built-in cloud provider hands Services of
	// type LoadBalancer their ingress addresses from.
	LBPool string

	// Profiling serves Go's profiles at /debug/pprof/ to cluster-admins
	// (upstream's --profiling, on by default).
	Profiling bool
	// MetricResolution is how often the API server scrapes every Ready
	// node's kubelet for the usage it serves as metrics.k8s.io
	// (metrics-server's --metric-resolution); 0 serves no metrics API.
	MetricResolution time.Duration
	// HPA tunes the HorizontalPodAutoscaler controller, as
	// kube-controller-manager's --horizontal-pod-autoscaler-* flags do.
	HPA HPAConfig

	// RequestTimeout bounds each request that is not long-running (a
	// watch, exec, logs...); MaxRequestsInFlight and
	// MaxMutatingRequestsInFlight bound the reads and the writes served at
	// once (0: no bound). Upstream's flags of the same names.
	RequestTimeout              time.Duration
	MaxRequestsInFlight         int
	MaxMutatingRequestsInFlight int
	// EnablePriorityAndFairness admits requests by API Priority and
	// Fairness (flowcontrol.apiserver.k8s.io), which shares the sum of
	// the two in-flight bounds among its priority levels, instead of by
	// the in-flight bounds themselves (--enable-priority-and-fairness).
	EnablePriorityAndFairness bool

	// AuthorizationMode is a comma-separated list of Node, RBAC,
	// AlwaysAllow, AlwaysDeny, asked in order (--authorization-mode).
	AuthorizationMode string

	// EncryptionProviderConfig is upstream's EncryptionConfiguration file
	// (--encryption-provider-config): which resources are encrypted at
	// rest, with which keys. EncryptionProviderConfigAutomaticReload
	// makes the server pick up changes to it without a restart.
	EncryptionProviderConfig                string
	EncryptionProviderConfigAutomaticReload bool
	// SecretsEncryption encrypts Secrets at rest with a configuration
	// skiff generates on first start (<data-dir>/cred/encryption-config.yaml,
	// one fresh key of SecretsEncryptionProvider: secretbox or aescbc),
	// reloaded on change, whose keys `skiff secrets-encrypt rotate-keys`
	// rotates (k3s's --secrets-encryption).
	SecretsEncryption         bool
	SecretsEncryptionProvider string

	// ShutdownDelayDuration is how long the server keeps serving after
	// it is told to stop, with /readyz failing, before it stops
	// accepting requests: time for load balancers to take it out
	// (--shutdown-delay-duration). ShutdownSendRetryAfter keeps the
	// listener open until the requests in flight have finished,
	// answering new ones 429 with Retry-After, instead of closing it when
	// the delay ends (--shutdown-send-retry-after). See shutdown.go.
	ShutdownDelayDuration  time.Duration
	ShutdownSendRetryAfter bool

	// AuditPolicyFile is upstream's audit Policy (audit.k8s.io/v1,
	// --audit-policy-file); without it nothing is audited. AuditLogPath
	// is where the events go, "-" for standard output
	// (--audit-log-path); the file is rotated at AuditLogMaxSize
	// megabytes, keeping AuditLogMaxBackup old files for AuditLogMaxAge
	// days (0: lumberjack's defaults: 100 MB, all files, forever).
	AuditPolicyFile   string
	AuditLogPath      string
	AuditLogMaxAge    int
	AuditLogMaxBackup int
	AuditLogMaxSize   int
	// AuditLogCompress gzips the rotated files (--audit-log-compress).
	AuditLogCompress bool

	// CertValidity is the lifetime of the leaf certificates skiff issues
	// (a year when zero); they are renewed two thirds into it while the
	// server runs (certs.go). A hidden flag, --cert-validity, for tests
	// that want to see certificates renewed within minutes.
	CertValidity time.Duration

	// Ready, if not nil, is closed once the server serves and the
	// kubeconfig is written (tests wait on it).
	Ready chan struct{}
	// Loopback, if not nil, is given the client configuration of the
	// API server's own machinery (the in-process transport, as
	// system:apiserver: full access) before Ready closes; SchedulerLoopback
	// that of the scheduler (system:kube-scheduler), on which `skiff
	// bench` runs its scheduler as `skiff server` does.
	Loopback, SchedulerLoopback func(*rest.Config)
}

// Defaults returns the configuration `skiff server` has without flags.
func Defaults() Config {
	return Config{
		DataDir:        "/var/lib/skiff",
		BindAddress:    "127.0.0.1",
		HTTPSPort:      6443,
		ServiceCIDR:    "10.43.0.0/16",
		NodePortRange:  "30000-32767",
		Controllers:    []string{"*"},
		ClusterCIDR:    "10.42.0.0/16",
		NetworkBackend: "vxlan",
		KubeletPort:    10250,
		LBPool:         "127.0.100.0/24",

		LeaderElection:         leader.DefaultTiming,
		EtcdSnapshots:          SnapshotSchedule{Cron: DefaultSnapshotCron, Retention: DefaultSnapshotRetention},
		NodeMonitorGracePeriod: 40 * time.Second,
		MetricResolution:       15 * time.Second,
		Profiling:              true,
		HPA: HPAConfig{
			SyncPeriod:                   15 * time.Second,
			Tolerance:                    0.1,
			CPUInitializationPeriod:      5 * time.Minute,
			InitialReadinessDelay:        30 * time.Second,
			DownscaleStabilizationWindow: 5 * time.Minute,
		},

		AuthorizationMode:           ModeNode + "," + ModeRBAC,
		RequestTimeout:              apiserver.DefaultRequestTimeout,
		MaxRequestsInFlight:         apiserver.DefaultMaxRequestsInFlight,
		MaxMutatingRequestsInFlight: apiserver.DefaultMaxMutatingRequestsInFlight,
		EnablePriorityAndFairness:   true,
		SecretsEncryptionProvider:   "secretbox",
	}
}

func (c Config) serviceCIDR() (netip.Prefix, error) { return netip.ParsePrefix(c.ServiceCIDR) }

// HPAConfig is the HorizontalPodAutoscaler controller's tuning; each field
// is the kube-controller-manager flag --horizontal-pod-autoscaler-<name>.
type HPAConfig struct {
	SyncPeriod                   time.Duration // sync-period
	Tolerance                    float64       // tolerance
	CPUInitializationPeriod      time.Duration // cpu-initialization-period
	InitialReadinessDelay        time.Duration // initial-readiness-delay
	DownscaleStabilizationWindow time.Duration // downscale-stabilization
}
