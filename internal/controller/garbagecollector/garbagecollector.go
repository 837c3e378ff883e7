// Package garbagecollector is the garbage collector of ownerReferences:
// it deletes objects whose owners are gone (background), deletes an
// owner's dependents before the owner when the owner is deleted in the
// foreground, and strips an owner's references from its dependents when
// the owner is deleted with orphan propagation. The API server adds the
// foregroundDeletion and orphan finalizers on DELETE (internal/apiserver
// delete.go); this controller removes them when their work is done.
//
// It watches every resource that discovery lists as listable, watchable
// and deletable, caching only object metadata (PartialObjectMetadata: no
// object bodies), and keeps an ownership graph keyed by uid. Reads and
// writes go through the metadata client.
// Discovery is read again every 30 s to watch new types (CRDs).
//
// An owner's absence is always confirmed with a live GET by name and uid
// before a dependent is deleted, never taken from a cache alone. Likewise
// an owner's orphan and foregroundDeletion finalizers are removed only
// after a live list of the server (liveDependents, sweep.go) found no
// dependent left to orphan or to wait for: the graph is fed by one watch
// per resource, and any one of them can trail the others.
package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

const name = "garbagecollector"

// errUnobservedDependents: an owner deleted in the foreground still has
// blocking dependents that the server holds and the graph has not
// observed; the owner is retried.
var errUnobservedDependents = errors.New("blocking dependents not yet observed")

// Options configure the collector.
type Options struct {
	// Workers is the number of workers of each queue (default 4).
	Workers int
	// ResyncPeriod is how often discovery is read again (default 30 s).
	ResyncPeriod time.Duration
}

// Controller is the garbage collector.
type Controller struct {
	discovery discovery.DiscoveryInterface
	metadata  metadata.Interface
	mapper    *restmapper.DeferredDiscoveryRESTMapper
	// mapperReset is when a kind the mapper did not know last made it
	// read discovery again (unix nanoseconds).
	mapperReset atomic.Int64
	recorder    record.EventRecorder
	graph       *graph
	deleteQ     *reconcile.Queue
	orphanQ     *reconcile.Queue
	opts        Options
	log         *slog.Logger

	mu       sync.Mutex
	monitors map[monitorKey]*monitor
	wg       sync.WaitGroup // monitor goroutines

	// hold, when set, sees every informer event before the graph does and
	// may block in it: blocking holds back every later event of that
	// resource too, as a watch that lags under load does. It is how tests
	// make the graph's view of one resource trail the server. Nil outside
	// tests; set before Start.
	hold func(schema.GroupVersionKind, *metav1.PartialObjectMetadata)
}

// New builds the collector from a client configuration: it makes its own
// discovery and metadata clients, as it watches resources no typed
// informer factory knows.
func New(cfg *rest.Config, recorder record.EventRecorder, opts ...Options) (*Controller, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.ResyncPeriod <= 0 {
		o.ResyncPeriod = 30 * time.Second
	}
	if cfg == nil {
		return nil, fmt.Errorf("%s: no client configuration", name)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: discovery client: %w", name, err)
	}
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: metadata client: %w", name, err)
	}
	c := &Controller{
		discovery: dc,
		metadata:  mc,
		mapper:    restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)),
		recorder:  recorder,
		opts:      o,
		monitors:  map[monitorKey]*monitor{},
		log:       slog.Default().With("controller", name),
	}
	c.deleteQ = reconcile.New(name+"-delete", c.attemptToDelete)
	c.orphanQ = reconcile.New(name+"-orphan", c.attemptToOrphan)
	c.graph = newGraph(
		func(uid types.UID) { c.deleteQ.Add(string(uid)) },
		func(uid types.UID) { c.orphanQ.Add(string(uid)) },
	)
	return c, nil
}

// Start watches the discovered resources, waits for their caches, and
// collects until ctx ends. It returns after every worker and informer
// goroutine has exited.
func (c *Controller) Start(ctx context.Context) error {
	defer c.wg.Wait()
	defer c.stopMonitors()
	for {
		err := c.resync(ctx)
		if err == nil {
			break
		}
		c.log.Warn("discovery failed, retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(3)
	go func() { defer wg.Done(); errs <- c.deleteQ.Run(ctx, c.opts.Workers, c.synced) }()
	go func() { defer wg.Done(); errs <- c.orphanQ.Run(ctx, c.opts.Workers, c.synced) }()
	go func() {
		defer wg.Done()
		t := time.NewTicker(c.opts.ResyncPeriod)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := c.resync(ctx); err != nil {
					c.log.Warn("discovery failed", "err", err)
				}
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

// synced reports whether every monitor's cache has synced.
func (c *Controller) synced() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.monitors {
		if !m.informer.HasSynced() {
			return false
		}
	}
	return true
}

// GraphSize is the number of objects in the ownership graph (for tests and
// metrics).
func (c *Controller) GraphSize() int { return c.graph.size() }

// deleteOptions returns DeleteOptions with a uid precondition.
func deleteOptions(uid types.UID, policy metav1.DeletionPropagation) metav1.DeleteOptions {
	return metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &uid}}
}
