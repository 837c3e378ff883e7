package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/knftables"
)

// Config configures the proxy of one node.
type Config struct {
	// NodeName decides which endpoints are local (for the Local traffic
	// policies).
	NodeName string
	// NodeIPs are the IPv4 addresses NodePorts answer on (127.0.0.1
	// included if listed). Empty: every local address.
	NodeIPs []string
	// ClusterCIDR is the pod network (10.42.0.0/16): traffic to a ClusterIP
	// from outside it is masqueraded. Empty masquerades all of it.
	ClusterCIDR string
	Client      kubernetes.Interface
	// Table is the nftables table (family ip); default DefaultTable.
	Table string
	// MinSyncPeriod is the least time between two syncs, so that bursts
	// of changes coalesce (default 100ms). SyncPeriod is how often
	// everything is recomputed and the kernel's table checked (default 30s).
	MinSyncPeriod time.Duration
	SyncPeriod    time.Duration
	Log           *slog.Logger
}

// indexByService indexes EndpointSlices by "namespace/service".
const indexByService = "proxy.skiff.io/service"

// Proxier keeps the node's nftables table in step with Services and
// EndpointSlices.
type Proxier struct {
	cfg    Config
	log    *slog.Logger
	rules  ruleConfig
	syncer *syncer

	// prepareHost sets the host up and reports whether bridged traffic
	// passes netfilter (host.go); tests that must not touch the host
	// replace it.
	prepareHost func() bool

	started    atomic.Bool
	synced     chan struct{}
	syncedOnce sync.Once
	kick       chan struct{} // buffered(1): something is dirty

	mu    sync.Mutex
	dirty map[types.NamespacedName]bool // services to rebuild
	all   bool                          // rebuild every service

	services corelisters.ServiceLister
	slices   cache.Indexer
}

// DefaultTable is the nftables table (family ip) the proxy programs
// unless Config.Table names another; `skiff killall` deletes it.
const DefaultTable = "skiff"

// New checks cfg and that nft works here (it needs the nft binary, v1.0.1
// or later, and CAP_NET_ADMIN); it changes nothing until Start.
func New(cfg Config) (*Proxier, error) {
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	nft, err := knftables.New(knftables.IPv4Family, cfg.Table)
	if err != nil {
		return nil, fmt.Errorf("proxy: nftables: %w", err)
	}
	return newProxier(cfg, nft)
}

// newProxier is New with the nftables interface given (a fake in tests).
func newProxier(cfg Config, nft knftables.Interface) (*Proxier, error) {
	if cfg.Client == nil {
		return nil, errors.New("proxy: a client is required")
	}
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if cfg.MinSyncPeriod <= 0 {
		cfg.MinSyncPeriod = 100 * time.Millisecond
	}
	if cfg.SyncPeriod <= 0 {
		cfg.SyncPeriod = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	for _, ip := range cfg.NodeIPs {
		if !isIPv4(ip) {
			return nil, fmt.Errorf("proxy: node IP %q is not an IPv4 address (IPv6 is not supported)", ip)
		}
	}
	if cfg.ClusterCIDR != "" {
		pfx, err := netip.ParsePrefix(cfg.ClusterCIDR)
		if err != nil || !pfx.Addr().Is4() {
			return nil, fmt.Errorf("proxy: cluster CIDR %q is not an IPv4 prefix", cfg.ClusterCIDR)
		}
		cfg.ClusterCIDR = pfx.Masked().String()
	}
	p := &Proxier{
		cfg:    cfg,
		log:    cfg.Log.With("component", "proxy"),
		rules:  ruleConfig{NodeName: cfg.NodeName, ClusterCIDR: cfg.ClusterCIDR},
		syncer: newSyncer(nft, cfg.NodeIPs),
		synced: make(chan struct{}),
		kick:   make(chan struct{}, 1),
		dirty:  map[types.NamespacedName]bool{},
	}
	p.prepareHost = p.setUpHost
	return p, nil
}

// Synced is closed once the table has been programmed from a complete view
// of Services and EndpointSlices.
func (p *Proxier) Synced() <-chan struct{} { return p.synced }

// Start prepares the host (ip_forward, route_localnet, bridge netfilter),
// watches Services and EndpointSlices and keeps the table in step until ctx
// ends. It then deletes the table and returns once its informers have
// stopped. It may be called once.
func (p *Proxier) Start(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("proxy: already started")
	}
	if !p.prepareHost() {
		p.rules.MasqueradeAll = true
	}

	factory := informers.NewSharedInformerFactory(p.cfg.Client, 0)
	svcInf := factory.Core().V1().Services()
	p.services = svcInf.Lister()
	if _, err := svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    p.serviceChanged,
		UpdateFunc: func(_, obj any) { p.serviceChanged(obj) },
		DeleteFunc: p.serviceChanged,
	}); err != nil {
		return fmt.Errorf("proxy: service handler: %w", err)
	}
	sliceInf := factory.Discovery().V1().EndpointSlices().Informer()
	if err := sliceInf.AddIndexers(cache.Indexers{indexByService: sliceServiceKeys}); err != nil {
		return fmt.Errorf("proxy: slice index: %w", err)
	}
	p.slices = sliceInf.GetIndexer()
	if _, err := sliceInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: p.sliceChanged,
		UpdateFunc: func(old, cur any) {
			p.sliceChanged(old) // its service label may have changed
			p.sliceChanged(cur)
		},
		DeleteFunc: p.sliceChanged,
	}); err != nil {
		return fmt.Errorf("proxy: slice handler: %w", err)
	}

	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), svcInf.Informer().HasSynced, sliceInf.HasSynced) {
		p.cleanup(ctx)
		return nil
	}
	p.log.Info("proxy starting", "table", p.cfg.Table, "nodeIPs", p.cfg.NodeIPs, "clusterCIDR", p.cfg.ClusterCIDR)
	p.run(ctx)
	p.cleanup(ctx)
	return nil
}

// cleanup deletes the table after ctx has ended.
func (p *Proxier) cleanup(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := p.syncer.deleteTable(cctx); err != nil {
		p.log.Error("proxy table not removed", "table", p.cfg.Table, "err", err)
		return
	}
	p.log.Info("proxy stopped, table removed", "table", p.cfg.Table)
}

// run syncs at once, then whenever something is dirty (at most once per
// MinSyncPeriod), every SyncPeriod, and after failures with a backoff.
func (p *Proxier) run(ctx context.Context) {
	resync := time.NewTicker(p.cfg.SyncPeriod)
	defer resync.Stop()
	retry := time.NewTimer(0) // the first sync
	defer retry.Stop()
	backoff := p.cfg.MinSyncPeriod
	var last time.Time
	p.markAll()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-retry.C:
		case <-resync.C:
			if err := p.syncer.verify(ctx); err != nil {
				p.log.Error("proxy table check failed", "err", err)
			}
			p.markAll()
		}
		if wait := time.Until(last.Add(p.cfg.MinSyncPeriod)); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		last = time.Now()
		if err := p.sync(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log.Error("proxy sync failed", "err", err, "retryIn", backoff)
			retry.Reset(backoff)
			backoff = min(2*backoff, p.cfg.SyncPeriod)
			continue
		}
		backoff = p.cfg.MinSyncPeriod
		p.syncedOnce.Do(func() { close(p.synced) })
		if len(p.syncer.stale) > 0 {
			// Come back to delete the chains this sync emptied.
			retry.Reset(staleChainDelay + p.cfg.MinSyncPeriod)
		}
	}
}

// sync rebuilds the dirty services (all of them when asked or when the
// syncer needs a full sync) and applies the difference.
func (p *Proxier) sync(ctx context.Context) error {
	p.mu.Lock()
	dirty, all := p.dirty, p.all || p.syncer.needFull
	p.dirty, p.all = map[types.NamespacedName]bool{}, false
	p.mu.Unlock()

	start := time.Now()
	updates := map[types.NamespacedName]*serviceRules{}
	if all {
		svcs, err := p.services.List(labels.Everything())
		if err != nil {
			return fmt.Errorf("list services: %w", err)
		}
		for _, svc := range svcs {
			updates[types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}] = p.build(svc)
		}
		for key := range p.syncer.applied {
			if _, ok := updates[key]; !ok {
				updates[key] = nil
			}
		}
	} else {
		for key := range dirty {
			svc, err := p.services.Services(key.Namespace).Get(key.Name)
			switch {
			case apierrors.IsNotFound(err):
				updates[key] = nil
			case err != nil:
				return fmt.Errorf("service %s: %w", key, err)
			default:
				updates[key] = p.build(svc)
			}
		}
	}
	if err := p.syncer.apply(ctx, updates); err != nil {
		p.mu.Lock()
		p.all = true
		p.mu.Unlock()
		return err
	}
	p.log.Debug("proxy synced", "services", len(updates), "full", all, "elapsed", time.Since(start))
	return nil
}

func (p *Proxier) build(svc *corev1.Service) *serviceRules {
	objs, err := p.slices.ByIndex(indexByService, svc.Namespace+"/"+svc.Name)
	if err != nil {
		p.log.Error("endpoint slice index", "service", svc.Namespace+"/"+svc.Name, "err", err)
	}
	epSlices := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if s, ok := o.(*discoveryv1.EndpointSlice); ok {
			epSlices = append(epSlices, s)
		}
	}
	return buildService(&p.rules, svc, epSlices)
}

func (p *Proxier) markAll() {
	p.mu.Lock()
	p.all = true
	p.mu.Unlock()
}

func (p *Proxier) markDirty(key types.NamespacedName) {
	p.mu.Lock()
	p.dirty[key] = true
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *Proxier) serviceChanged(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if svc, ok := obj.(*corev1.Service); ok {
		p.markDirty(types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name})
	}
}

func (p *Proxier) sliceChanged(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
		p.markDirty(types.NamespacedName{Namespace: s.Namespace, Name: name})
	}
}

// sliceServiceKeys indexes a slice by its Service (any manager: upstream's
// proxy also follows slices that another controller maintains).
func sliceServiceKeys(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return nil, nil
	}
	return []string{s.Namespace + "/" + name}, nil
}
