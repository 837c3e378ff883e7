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

	"github.com/prometheus/client_golang/prometheus"
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
	// Registerer receives kube-proxy's metrics (metrics.go); nil means
	// none.
	Registerer prometheus.Registerer
}

// change says what made a service dirty.
type change uint8

const (
	serviceChange change = 1 << iota
	endpointsChange
)

// indexByService indexes EndpointSlices by "namespace/service".
const indexByService = "proxy.skiff.io/service"

// Proxier keeps the node's nftables table in step with Services and
// EndpointSlices.
type Proxier struct {
	cfg     Config
	log     *slog.Logger
	rules   ruleConfig
	syncer  *syncer
	metrics *metrics

	// prepareHost sets the host up and reports whether bridged traffic
	// passes netfilter (host.go); tests that must not touch the host
	// replace it.
	prepareHost func() bool

	started    atomic.Bool
	startedAt  time.Time // set by Start before its informers run
	synced     chan struct{}
	syncedOnce sync.Once
	kick       chan struct{} // buffered(1): something is dirty

	mu    sync.Mutex
	dirty map[types.NamespacedName]change // services to rebuild, and why
	all   bool                            // rebuild every service
	// pendingServices and pendingEndpoints count the entries of dirty
	// with a Service and an EndpointSlice change.
	pendingServices, pendingEndpoints int
	// triggers are the last-change-trigger-times of the slice changes in
	// dirty, by service: what network programming latency is measured
	// from.
	triggers map[types.NamespacedName][]time.Time

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
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	p := &Proxier{
		cfg:      cfg,
		log:      cfg.Log.With("component", "proxy"),
		rules:    ruleConfig{NodeName: cfg.NodeName, ClusterCIDR: cfg.ClusterCIDR},
		syncer:   newSyncer(nft, cfg.NodeIPs),
		metrics:  m,
		synced:   make(chan struct{}),
		kick:     make(chan struct{}, 1),
		dirty:    map[types.NamespacedName]change{},
		triggers: map[types.NamespacedName][]time.Time{},
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
	p.startedAt = time.Now()

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
		AddFunc:    func(cur any) { p.sliceChanged(nil, cur) },
		UpdateFunc: p.sliceChanged,
		DeleteFunc: func(old any) { p.sliceChanged(old, nil) },
	}); err != nil {
		return fmt.Errorf("proxy: slice handler: %w", err)
	}

	factory.StartWithContext(ctx)
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
	dirty, all, triggers := p.dirty, p.all, p.triggers
	p.dirty, p.all, p.triggers = map[types.NamespacedName]change{}, false, map[types.NamespacedName][]time.Time{}
	p.pendingServices, p.pendingEndpoints = 0, 0
	p.metrics.pending(0, 0)
	p.mu.Unlock()

	start := time.Now()
	full := p.syncer.needFull
	n, err := p.apply(ctx, dirty, all || full)
	var changed []time.Time
	for _, ts := range triggers {
		changed = append(changed, ts...)
	}
	p.metrics.synced(start, full, err, p.syncer.noLocal, changed)
	if err != nil {
		return err
	}
	p.log.Debug("proxy synced", "services", n, "full", all || full, "elapsed", time.Since(start))
	return nil
}

// apply rebuilds the dirty services, or all of them, and has the syncer
// program the difference; it returns how many services it rebuilt.
func (p *Proxier) apply(ctx context.Context, dirty map[types.NamespacedName]change, all bool) (int, error) {
	updates := map[types.NamespacedName]*serviceRules{}
	if all {
		svcs, err := p.services.List(labels.Everything())
		if err != nil {
			return 0, fmt.Errorf("list services: %w", err)
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
				return 0, fmt.Errorf("service %s: %w", key, err)
			default:
				updates[key] = p.build(svc)
			}
		}
	}
	if err := p.syncer.apply(ctx, updates); err != nil {
		p.mu.Lock()
		p.all = true
		p.mu.Unlock()
		return 0, err
	}
	return len(updates), nil
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

// markDirty records one Service (or, with slice, EndpointSlice) event that
// changed the services keys and wakes the sync loop.
func (p *Proxier) markDirty(slice bool, keys ...types.NamespacedName) {
	what := serviceChange
	if slice {
		what = endpointsChange
	}
	p.mu.Lock()
	for _, key := range keys {
		c := p.dirty[key]
		if c&what == 0 {
			if slice {
				p.pendingEndpoints++
			} else {
				p.pendingServices++
			}
		}
		p.dirty[key] = c | what
	}
	p.metrics.pending(p.pendingServices, p.pendingEndpoints)
	p.mu.Unlock()
	p.metrics.changed(slice)
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
		p.markDirty(false, types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name})
	}
}

// sliceChanged handles the change of a slice from old to cur (nil old: it
// was added; nil cur: deleted). Both their services are dirty: the
// service label may have changed.
func (p *Proxier) sliceChanged(old, cur any) {
	was, is := sliceOf(old), sliceOf(cur)
	var keys []types.NamespacedName
	for _, s := range []*discoveryv1.EndpointSlice{was, is} {
		if key, ok := sliceService(s); ok && (len(keys) == 0 || keys[0] != key) {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return
	}
	p.noteTrigger(was, is)
	p.markDirty(true, keys...)
}

// noteTrigger remembers the last-change-trigger-time of a slice that the
// endpointslice controller has just written, as upstream does: not one
// from before the proxy started (the slice may be days old), not one that
// the update left as it was (the change was made by someone else, or is
// one we have seen), and none for a deleted slice (its time is that of
// its last update), whose pending ones are dropped.
func (p *Proxier) noteTrigger(was, is *discoveryv1.EndpointSlice) {
	if p.metrics == nil {
		return
	}
	if is == nil {
		if key, ok := sliceService(was); ok {
			p.mu.Lock()
			delete(p.triggers, key)
			p.mu.Unlock()
		}
		return
	}
	key, ok := sliceService(is)
	value := is.Annotations[corev1.EndpointsLastChangeTriggerTime]
	if !ok || value == "" || (was != nil && was.Annotations[corev1.EndpointsLastChangeTriggerTime] == value) {
		return
	}
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil || !t.After(p.startedAt) {
		return
	}
	p.mu.Lock()
	p.triggers[key] = append(p.triggers[key], t)
	p.mu.Unlock()
}

// sliceOf is the EndpointSlice an informer event carries, or nil.
func sliceOf(obj any) *discoveryv1.EndpointSlice {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, _ := obj.(*discoveryv1.EndpointSlice)
	return s
}

// sliceService is the Service a slice belongs to; false for nil or a
// slice without the service-name label.
func sliceService(s *discoveryv1.EndpointSlice) (types.NamespacedName, bool) {
	if s == nil || s.Labels[discoveryv1.LabelServiceName] == "" {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: s.Namespace, Name: s.Labels[discoveryv1.LabelServiceName]}, true
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
