package kubelet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Volumes materialises pod volumes on the node (internal/kubelet/volume).
type Volumes interface {
	// SetUp creates or refreshes every volume of pod; it is idempotent and
	// returns the joined errors of the volumes it could not set up.
	SetUp(ctx context.Context, pod *corev1.Pod) error
	// Mounts is container c's volumeMounts as CRI mounts; SetUp ran first.
	Mounts(pod *corev1.Pod, c *corev1.Container, env map[string]string) ([]*runtimeapi.Mount, error)
	// TearDown removes everything SetUp made for the pod.
	TearDown(uid types.UID) error
	// PodUIDsOnDisk lists the pods that have volume state on the node.
	PodUIDsOnDisk() ([]types.UID, error)
}

// Probes runs liveness, readiness and startup probes (internal/kubelet/prober).
type Probes interface {
	// Sync tells the prober which containers of pod run now, by name.
	Sync(pod *corev1.Pod, running map[string]ProbeTarget)
	RemovePod(uid types.UID)
	// Ready is the readiness result; true for a container without a probe.
	Ready(uid types.UID, container string) bool
	// Started is the startup result; true for a container without a probe.
	Started(uid types.UID, container string) bool
	// Failed reports a container whose liveness or startup probe failed
	// past its threshold: the kubelet kills it and the restart policy
	// decides the rest. Each call returns the failures seen since the last.
	Failed(uid types.UID) []ProbeFailure
}

// ProbeTarget is a running container the prober should probe.
type ProbeTarget struct {
	ID        string
	StartedAt time.Time
	PodIP     string
}

// ProbeFailure names a container to restart and why.
type ProbeFailure struct {
	Container, ContainerID, Kind string
}

// EnvInputs are the node-side values a container's environment refers to.
type EnvInputs struct {
	PodIPs, HostIPs []string
	NodeName        string
	NodeAllocatable corev1.ResourceList
}

// Config is what a Kubelet needs. Client, Runtime, Images, NodeName,
// RootDir, Volumes, Env and Expand are required.
type Config struct {
	NodeName string
	// NodeIP is the node's InternalIP and the pods' hostIP.
	NodeIP string
	Client kubernetes.Interface
	// Runtime and Images are the CRI services (containerd's socket).
	Runtime internalapi.RuntimeService
	Images  internalapi.ImageManagerService
	// RuntimeHandler is passed to RunPodSandbox for pods without a
	// runtimeClassName ("" is the runtime's default).
	RuntimeHandler string
	// RootDir holds per-pod state: logs, etc-hosts, termination messages.
	RootDir string
	Volumes Volumes
	Probes  Probes
	// Env computes a container's environment; Expand expands $(VAR)
	// references in command, args and subPathExpr.
	Env    func(ctx context.Context, pod *corev1.Pod, c *corev1.Container, in EnvInputs) ([]*runtimeapi.KeyValue, error)
	Expand func(s string, env map[string]string) string
	// KubeletPort is published in the Node's daemonEndpoints.
	KubeletPort int32
	// ClusterDNS and ClusterDomain are what ClusterFirst pods resolve with.
	// Without ClusterDNS such pods fall back to the node's resolver, with a
	// MissingClusterDNS event, as upstream.
	ClusterDNS    []string
	ClusterDomain string
	// ResolvConf is the node's resolver file ("/etc/resolv.conf").
	ResolvConf string
	// Labels are added to the Node at registration.
	Labels map[string]string
	// Annotations are set on the Node at registration, replacing what a
	// previous run set under the same keys.
	Annotations map[string]string
	// PodEndpoints reports whether any EndpointSlice lists pod, and whether
	// one lists it as ready: a deleted pod that is an endpoint has its
	// containers stopped only once it is no longer ready anywhere (or a
	// few seconds have passed). Nil: stop at once.
	PodEndpoints func(pod *corev1.Pod) (listed, ready bool)
	// OnPodCIDR is called with the node's podCIDR once the node IPAM
	// controller has given it one (the CNI configuration needs it).
	OnPodCIDR func(cidr string) error
	// Version is reported as the Node's kubeletVersion.
	Version string
	// Recorder records the kubelet's events; nil makes one that writes
	// through Client.
	Recorder record.EventRecorder
	Log      *slog.Logger
	// Registerer is where New registers the kubelet's metrics
	// (metrics.go): the node's registry, which the kubelet server serves
	// at /metrics. Nil: the kubelet keeps no metrics anyone can read.
	Registerer prometheus.Registerer
	// CgroupRoot is the cgroup the pods' kubepods hierarchy is made in
	// (upstream's --cgroup-root); "" or "/" is the root.
	CgroupRoot string

	// Periods; zero means upstream's defaults.
	SyncPeriod       time.Duration // every pod is re-synced this often (10 s)
	RelistPeriod     time.Duration // the runtime is listed this often to notice exits (1 s)
	LeasePeriod      time.Duration // Lease renewal (10 s)
	NodeStatusPeriod time.Duration // Node status is written at least this often (1 min)
	BackoffInitial   time.Duration // crash-loop back-off: 10 s ...
	BackoffMax       time.Duration // ... doubling to 5 min
	Workers          int           // pod sync workers (8)
}

func (c *Config) defaults() error {
	if c.NodeName == "" || c.Client == nil || c.Runtime == nil || c.Images == nil || c.RootDir == "" ||
		c.Volumes == nil || c.Env == nil || c.Expand == nil {
		return errors.New("kubelet: NodeName, Client, Runtime, Images, RootDir, Volumes, Env and Expand are required")
	}
	if c.Probes == nil {
		c.Probes = noProbes{}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.ResolvConf == "" {
		c.ResolvConf = "/etc/resolv.conf"
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = "cluster.local"
	}
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&c.SyncPeriod, 10*time.Second)
	set(&c.RelistPeriod, time.Second)
	set(&c.LeasePeriod, 10*time.Second)
	set(&c.NodeStatusPeriod, time.Minute)
	set(&c.BackoffInitial, 10*time.Second)
	set(&c.BackoffMax, 5*time.Minute)
	if c.Workers <= 0 {
		c.Workers = 8
	}
	return nil
}

// Kubelet runs one node's pods. Create it with New and run it with Start.
type Kubelet struct {
	cfg      Config
	log      *slog.Logger
	recorder record.EventRecorder
	events   record.EventBroadcaster
	factory  informers.SharedInformerFactory
	podInf   cache.SharedIndexInformer
	queue    workqueue.TypedRateLimitingInterface[types.UID]
	backoff  *backoff
	metrics  *kubeletMetrics

	lastRelist time.Time // start of the last successful relist; relistLoop's own

	mu             sync.Mutex
	pods           map[types.UID]*corev1.Pod // the informer's pods by UID, kept after deletion until cleaned up
	waiting        map[string]waitingState   // uid/container -> why it is not running
	firstSeen      map[types.UID]time.Time   // status.startTime for pods seen first by this kubelet
	startObserved  map[types.UID]bool        // pods whose start kubelet_pod_start_duration_seconds has counted
	work           map[types.UID]string      // why each queued pod waits (kubelet_pod_worker_duration_seconds)
	pullFailed     map[string]time.Time      // last failed image pull per container
	terminating    map[types.UID]bool        // pods whose containers are being stopped
	fingerprint    map[types.UID]string      // last relist's container states per pod
	node           *corev1.Node              // last written Node
	runtime        string                    // the runtime's name, "containerd", read at registration
	runtimeVersion string                    // "containerd://1.6.20", read at registration

	alloc allocations // accepted and applied resources, for in-place resize (resize.go)

	wg         sync.WaitGroup // terminations in flight
	registered chan struct{}  // closed once the Node is registered
}

// waitingState is why a container is not running, for containerStatuses.
type waitingState struct {
	reason, message string
}

// New checks cfg and builds a Kubelet; nothing runs until Start.
func New(cfg Config) (*Kubelet, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	metrics, err := newKubeletMetrics(cfg.Registerer, cfg.NodeName)
	if err != nil {
		return nil, err
	}
	k := &Kubelet{
		cfg:           cfg,
		log:           cfg.Log.With("node", cfg.NodeName),
		pods:          map[types.UID]*corev1.Pod{},
		waiting:       map[string]waitingState{},
		firstSeen:     map[types.UID]time.Time{},
		startObserved: map[types.UID]bool{},
		work:          map[types.UID]string{},
		metrics:       metrics,
		pullFailed:    map[string]time.Time{},
		terminating:   map[types.UID]bool{},
		fingerprint:   map[types.UID]string{},
		backoff:       newBackoff(cfg.BackoffInitial, cfg.BackoffMax),
		registered:    make(chan struct{}),
	}
	k.recorder = cfg.Recorder
	if k.recorder == nil {
		k.events = record.NewBroadcaster()
		k.recorder = k.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: cfg.NodeName})
	}
	k.factory = informers.NewSharedInformerFactoryWithOptions(cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName).String()
		}))
	k.podInf = k.factory.Core().V1().Pods().Informer()
	k.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[types.UID](100*time.Millisecond, 10*time.Second),
		workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "kubelet"})
	_, err = k.podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { k.observe(obj, false) },
		UpdateFunc: func(old, obj any) {
			if o, n, ok := pods(old, obj); ok && statusOnly(o, n) {
				k.remember(n) // our own status write, mostly: no sync needed
				return
			}
			k.observe(obj, false)
		},
		DeleteFunc: func(obj any) { k.observe(obj, true) },
	})
	if err != nil {
		return nil, fmt.Errorf("kubelet: pod informer: %w", err)
	}
	return k, nil
}

// observe records the informer's latest copy of a pod and queues it. A
// deleted pod stays known (marked by its absence from the informer) until
// its sync has removed its containers.
func (k *Kubelet) observe(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	now := time.Now()
	k.mu.Lock()
	switch _, known := k.firstSeen[pod.UID]; {
	case deleted:
		delete(k.pods, pod.UID)
		k.noteWorkLocked(pod.UID, workKill)
	case !known:
		k.pods[pod.UID] = pod
		k.firstSeen[pod.UID] = now
		k.noteWorkLocked(pod.UID, workCreate)
	default:
		k.pods[pod.UID] = pod
		k.noteWorkLocked(pod.UID, workUpdate)
	}
	k.mu.Unlock()
	k.queue.Add(pod.UID)
}

// SetKubeletPort sets the port published in the Node's daemonEndpoints;
// call it before Start (the kubelet's server is created after the kubelet).
func (k *Kubelet) SetKubeletPort(port int32) { k.cfg.KubeletPort = port }

// Registered is closed once the kubelet has registered its Node.
func (k *Kubelet) Registered() <-chan struct{} { return k.registered }

// Allocatable is what the node offers pods.
func (k *Kubelet) Allocatable() corev1.ResourceList { return k.allocatable() }

// pods casts an informer update's objects.
func pods(old, obj any) (*corev1.Pod, *corev1.Pod, bool) {
	o, ok1 := old.(*corev1.Pod)
	n, ok2 := obj.(*corev1.Pod)
	return o, n, ok1 && ok2
}

// statusOnly reports an update that changed nothing the kubelet acts on:
// the kubelet's own status writes, or another component's (the periodic
// resync still picks those up, as upstream's pod workers do).
func statusOnly(o, n *corev1.Pod) bool {
	return apiequality.Semantic.DeepEqual(o.Spec, n.Spec) &&
		apiequality.Semantic.DeepEqual(o.DeletionTimestamp, n.DeletionTimestamp) &&
		apiequality.Semantic.DeepEqual(o.Labels, n.Labels) &&
		apiequality.Semantic.DeepEqual(o.Annotations, n.Annotations) &&
		o.Status.Phase == n.Status.Phase
}

// remember stores the latest copy of a pod without queueing it.
func (k *Kubelet) remember(pod *corev1.Pod) {
	k.mu.Lock()
	if _, ok := k.pods[pod.UID]; ok {
		k.pods[pod.UID] = pod
	}
	k.mu.Unlock()
}

// Enqueue asks for a sync of the pod with uid (a probe result changed).
func (k *Kubelet) Enqueue(uid types.UID) { k.enqueue(uid, workSync) }

// pod is the latest desired state of uid, or nil once the API has no pod.
func (k *Kubelet) pod(uid types.UID) *corev1.Pod {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.pods[uid]
}

// Start registers the node and runs the kubelet until ctx ends. It returns
// after every worker has stopped; containers keep running (a restarted
// kubelet adopts them).
func (k *Kubelet) Start(ctx context.Context) error {
	if k.events != nil {
		k.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: k.cfg.Client.CoreV1().Events("")})
		defer k.events.Shutdown()
	}
	defer k.queue.ShutDown()

	if err := k.register(ctx); err != nil {
		return err
	}
	close(k.registered)
	var wg sync.WaitGroup
	run := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	run(k.heartbeat)
	k.factory.StartWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), k.podInf.HasSynced) {
		k.factory.Shutdown()
		wg.Wait()
		return ctx.Err()
	}
	run(k.relistLoop)
	run(k.resyncLoop)
	for i := 0; i < k.cfg.Workers; i++ {
		run(k.worker)
	}
	k.log.Info("kubelet started", "pods", len(k.podInf.GetStore().ListKeys()))
	<-ctx.Done()
	k.queue.ShutDown()
	wg.Wait()
	k.wg.Wait()
	k.factory.Shutdown()
	return nil
}

func (k *Kubelet) worker(ctx context.Context) {
	for {
		uid, quit := k.queue.Get()
		if quit {
			return
		}
		func() {
			defer k.queue.Done(uid)
			op := k.takeWork(uid)
			began := time.Now()
			err := k.syncPod(ctx, uid)
			k.metrics.podWorkerDuration.WithLabelValues(op).Observe(time.Since(began).Seconds())
			if err != nil {
				if ctx.Err() == nil {
					k.log.Warn("pod sync failed", "uid", uid, "err", err)
				}
				k.queue.AddRateLimited(uid)
				return
			}
			k.queue.Forget(uid)
		}()
	}
}

// resyncLoop queues every known pod each SyncPeriod: volume content is
// refreshed and time-based decisions are taken again.
func (k *Kubelet) resyncLoop(ctx context.Context) {
	t := time.NewTicker(k.cfg.SyncPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			k.mu.Lock()
			uids := make([]types.UID, 0, len(k.pods))
			for uid := range k.pods {
				uids = append(uids, uid)
			}
			k.mu.Unlock()
			for _, uid := range uids {
				k.enqueue(uid, workSync)
			}
			k.collectOrphans(ctx)
		}
	}
}

// noProbes stands in when no prober is configured: every container is
// ready and started once it runs.
type noProbes struct{}

func (noProbes) Sync(*corev1.Pod, map[string]ProbeTarget) {}
func (noProbes) RemovePod(types.UID)                      {}
func (noProbes) Ready(types.UID, string) bool             { return true }
func (noProbes) Started(types.UID, string) bool           { return true }
func (noProbes) Failed(types.UID) []ProbeFailure          { return nil }
