package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

// ErrStopped is returned by WaitReady when the simulator stopped (or
// failed to start) before every node was registered.
var ErrStopped = errors.New("simulator stopped")

// Sim is one simulator: a fixed set of nodes and the pods bound to them.
// A Sim is started once.
type Sim struct {
	client kubernetes.Interface
	cfg    Config
	log    *slog.Logger

	nodes   map[string]*simNode // fixed at New; values carry their own locks
	byIndex []*simNode          // the same nodes, by index
	tmpl    nodeTemplate

	nodeQ, leaseQ, podQ *reconcile.Queue

	nodeLister corelisters.NodeLister
	podLister  corelisters.PodLister
	pods       cache.Indexer // the pod informer's, with podNodeIndex

	registered atomic.Int64
	ready      chan struct{} // closed when every node is registered
	readyOnce  sync.Once
	started    atomic.Bool
	done       chan struct{} // closed when Start returns
	startErr   error         // set before done is closed

	podMu    sync.Mutex
	podTimes map[string]*trackedPod // by namespace/name
	podSeq   atomic.Uint64          // fallback pod IPs
}

// simNode is the simulator's state of one node.
type simNode struct {
	name  string
	index int

	// life is held shared by every write made for the node and
	// exclusively by Kill, so that no write for a node starts after Kill
	// returns.
	life   sync.RWMutex
	killed atomic.Bool
	// gone is set when the node was deleted from the API after the
	// simulator registered it: like a kubelet, it does not register again.
	gone       atomic.Bool
	registered atomic.Bool
	uid        atomic.Pointer[types.UID]

	lease  *coordinationv1.Lease // last written; lease worker only
	podSeq atomic.Uint64         // pod IPs of the node's podCIDR

	// The node's CPU counter (see accountPod and nodeUsage), in
	// core-nanoseconds: registeredAt is when this simulator registered
	// or took over the node (Unix ns; 0 before), cpuAdjust what the
	// node's pods used besides the share of those running now, cpuServed
	// the highest value served.
	registeredAt atomic.Int64
	cpuAdjust    atomic.Int64
	cpuServed    atomic.Int64
}

// dead reports whether the simulator has stopped acting for the node.
func (n *simNode) dead() bool { return n.killed.Load() || n.gone.Load() }

type trackedPod struct {
	uid   types.UID
	times podTimes
}

// New returns a simulator of cfg's nodes that talks to the API through
// client. The caller sets client's rate limits (the simulator makes about
// Nodes/HeartbeatInterval Lease writes a second, plus the pod writes).
// Empty names and quantities, and a zero HeartbeatInterval or Workers,
// take their defaults; Start reports an invalid cfg.
func New(client kubernetes.Interface, cfg Config) *Sim {
	cfg = cfg.withDefaults()
	s := &Sim{
		client:   client,
		cfg:      cfg,
		log:      slog.Default().With("component", "sim"),
		nodes:    make(map[string]*simNode, max(cfg.Nodes, 0)),
		byIndex:  make([]*simNode, max(cfg.Nodes, 0)),
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
		podTimes: map[string]*trackedPod{},
	}
	for i := range max(cfg.Nodes, 0) {
		name := fmt.Sprintf("%s%d", cfg.NamePrefix, i)
		s.nodes[name] = &simNode{name: name, index: i}
		s.byIndex[i] = s.nodes[name]
	}
	for _, name := range cfg.KillNodes {
		if n := s.nodes[name]; n != nil {
			n.killed.Store(true)
		}
	}
	if len(s.nodes) == 0 {
		s.readyOnce.Do(func() { close(s.ready) })
	}
	s.nodeQ = reconcile.New("sim-nodes", s.syncNode)
	s.leaseQ = reconcile.New("sim-leases", s.syncLease)
	s.podQ = reconcile.New("sim-pods", s.syncPod)
	return s
}

// Run simulates cfg's nodes until ctx ends: New and Start.
func Run(ctx context.Context, client kubernetes.Interface, cfg Config) error {
	return New(client, cfg).Start(ctx)
}

// Start registers the nodes, heartbeats and runs their pods until ctx
// ends. It returns after every goroutine it started has exited; it fails
// at once on an invalid Config or when called a second time.
func (s *Sim) Start(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("sim: already started")
	}
	err := s.start(ctx)
	s.startErr = err
	close(s.done)
	return err
}

func (s *Sim) start(ctx context.Context) error {
	if err := s.cfg.validate(); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	capacity, err := s.cfg.capacity()
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	nodeInf := coreinformers.NewFilteredNodeInformer(s.client, 0, cache.Indexers{}, func(o *metav1.ListOptions) {
		o.LabelSelector = SimLabel + "=true"
	})
	// Only bound pods: unscheduled ones are the scheduler's business.
	podInf := coreinformers.NewFilteredPodInformer(s.client, metav1.NamespaceAll, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc, podNodeIndex: indexPodNode},
		func(o *metav1.ListOptions) { o.FieldSelector = "spec.nodeName!=" })
	for _, inf := range []cache.SharedIndexInformer{nodeInf, podInf} {
		if err := inf.SetTransform(dropManagedFields); err != nil {
			return fmt.Errorf("sim: informer transform: %w", err)
		}
	}
	if _, err := nodeInf.AddEventHandler(s.nodeHandler()); err != nil {
		return fmt.Errorf("sim: node handler: %w", err)
	}
	if _, err := podInf.AddEventHandler(s.podHandler()); err != nil {
		return fmt.Errorf("sim: pod handler: %w", err)
	}
	s.nodeLister = corelisters.NewNodeLister(nodeInf.GetIndexer())
	s.podLister = corelisters.NewPodLister(podInf.GetIndexer())
	s.pods = podInf.GetIndexer()

	// The kubelet endpoint listens before any node registers: nodes
	// publish its port.
	var kubelet *kubeletServer
	port := int32(DefaultKubeletPort)
	if s.cfg.KubeletPort >= 0 {
		if kubelet, err = s.listenKubelet(); err != nil {
			return fmt.Errorf("sim: %w", err)
		}
		port = kubelet.port
		s.log.Info("serving the kubelet endpoint of every node", "port", port)
	}
	s.tmpl = nodeTemplate{capacity: capacity, labels: s.cfg.Labels, zoneCount: s.cfg.ZoneCount, taints: s.cfg.Taints, kubeletPort: port}

	for name := range s.nodes {
		s.nodeQ.Add(name)
	}
	s.log.Info("starting simulated nodes", "nodes", len(s.nodes), "prefix", s.cfg.NamePrefix, "runPods", s.cfg.RunPods)

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	run := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	run(func() { nodeInf.Run(ctx.Done()) })
	run(func() { podInf.Run(ctx.Done()) })
	w := s.cfg.Workers
	run(func() { errs <- s.nodeQ.Run(ctx, w, nodeInf.HasSynced) })
	run(func() { errs <- s.leaseQ.Run(ctx, w) })
	run(func() { errs <- s.podQ.Run(ctx, w, nodeInf.HasSynced, podInf.HasSynced) })
	if kubelet != nil {
		run(func() { errs <- kubelet.serve() })
		run(func() { s.requestServingCert(ctx, kubelet.cert) })
	}
	<-ctx.Done()
	if kubelet != nil {
		kubelet.shutdown()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

// WaitReady waits until every node has been registered with a Ready
// status (nodes killed from the start included: they register, then stop).
func (s *Sim) WaitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-s.done:
		select {
		case <-s.ready:
			return nil
		default:
		}
		if s.startErr != nil {
			return fmt.Errorf("%w: %w", ErrStopped, s.startErr)
		}
		return ErrStopped
	case <-ctx.Done():
		return fmt.Errorf("sim: waiting for %d nodes (%d registered): %w", len(s.nodes), s.registered.Load(), ctx.Err())
	}
}

// Kill makes node stop: no more heartbeats, Ready repairs or pod status
// writes, as if the machine died. When Kill returns, no write for the
// node is in flight. It reports whether node is one of this simulator's.
func (s *Sim) Kill(node string) bool {
	n := s.nodes[node]
	if n == nil {
		return false
	}
	n.life.Lock()
	n.killed.Store(true)
	n.life.Unlock()
	s.log.Info("node killed", "node", node)
	return true
}

// NodeNames lists the simulator's node names in index order.
func (s *Sim) NodeNames() []string {
	out := make([]string, len(s.nodes))
	for name, n := range s.nodes {
		out[n.index] = name
	}
	return out
}

func (s *Sim) markRegistered(n *simNode, node *corev1.Node) {
	uid := node.UID
	n.uid.Store(&uid)
	n.registeredAt.CompareAndSwap(0, time.Now().UnixNano())
	if n.registered.Swap(true) {
		return
	}
	if int(s.registered.Add(1)) == len(s.nodes) {
		s.readyOnce.Do(func() { close(s.ready) })
		s.log.Info("all simulated nodes registered", "nodes", len(s.nodes))
	}
	if !n.killed.Load() {
		s.leaseQ.AddAfter(n.name, leasePhase(n.name, s.cfg.HeartbeatInterval))
	}
}

// dropManagedFields trims what the simulator never reads from cached
// objects: with 50,000 pods, managed fields are most of the memory.
func dropManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
