// Package endpointslice is the EndpointSlice controller: for every Service
// with a selector it keeps discovery.k8s.io/v1 EndpointSlices (IPv4, at most
// 100 endpoints each, owned by the Service, labelled
// kubernetes.io/service-name and endpointslice.kubernetes.io/managed-by)
// listing the matching pods that have an IP, with their ready, serving and
// terminating conditions, node, zone and hostname. The proxy and dns read
// them.
//
// The decisions are pure functions (desired: which endpoints with which
// ports; planSlices: which slices to create, update and delete with the
// least churn) tested without a server; this file wires informers, and
// sync.go applies a plan. Unlike upstream there are no IPv6/dual-stack
// slices and no topology hints. The Endpoints of selector-less Services
// are mirrored by internal/controller/endpointslicemirroring.
package endpointslice

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/controller/podset"
	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

const name = "endpointslice"

// indexByService indexes the slices this controller manages by the
// namespace/name of their Service. Owned by this package.
const indexByService = "endpointslice.skiff.io/service"

// Options tune the controller.
type Options struct {
	// Workers is the number of Services reconciled at once (default 5).
	Workers int
	// MaxEndpointsPerSlice caps a slice (default 100, upstream's default).
	MaxEndpointsPerSlice int
}

// Controller is the EndpointSlice controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	opts     Options

	services corelisters.ServiceLister
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	slices   cache.Indexer
	synced   []cache.InformerSynced

	tracker *tracker
	queue   *reconcile.Queue
}

// New builds the controller and registers its Service, Pod, Node and
// EndpointSlice informers (with one slice index) and event handlers on
// factory. The caller starts the factory; Start waits for it to sync.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts ...Options) (*Controller, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", name)
	}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Workers <= 0 {
		o.Workers = 5
	}
	if o.MaxEndpointsPerSlice <= 0 {
		o.MaxEndpointsPerSlice = MaxEndpointsPerSlice
	}
	if recorder == nil {
		recorder = &record.FakeRecorder{}
	}
	c := &Controller{
		client:   client,
		recorder: recorder,
		log:      slog.Default().With("controller", name),
		opts:     o,
		tracker:  newTracker(),
	}
	c.queue = reconcile.New(name, c.sync)

	svcInf := factory.Core().V1().Services()
	c.services = svcInf.Lister()
	if _, err := svcInf.Informer().AddEventHandler(c.queue.Handler()); err != nil {
		return nil, fmt.Errorf("%s: service handler: %w", name, err)
	}

	podInf := factory.Core().V1().Pods()
	c.pods = podInf.Lister()
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.enqueuePodServices(PodOf(obj)) },
		UpdateFunc: func(old, cur any) {
			o, n := PodOf(old), PodOf(cur)
			if o == nil || n == nil || !PodAddressChanged(o, n) {
				return
			}
			c.enqueuePodServices(n)
			if !maps.Equal(o.Labels, n.Labels) {
				c.enqueuePodServices(o)
			}
		},
		DeleteFunc: func(obj any) { c.enqueuePodServices(PodOf(obj)) },
	}); err != nil {
		return nil, fmt.Errorf("%s: pod handler: %w", name, err)
	}

	nodeInf := factory.Core().V1().Nodes()
	c.nodes = nodeInf.Lister()
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*corev1.Node)
			n, ok2 := cur.(*corev1.Node)
			if ok1 && ok2 && o.Labels[corev1.LabelTopologyZone] != n.Labels[corev1.LabelTopologyZone] {
				c.enqueueAllServices() // rare: a node changed zone
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("%s: node handler: %w", name, err)
	}

	sliceInf := factory.Discovery().V1().EndpointSlices().Informer()
	if err := sliceInf.AddIndexers(cache.Indexers{indexByService: indexSliceByService}); err != nil {
		return nil, fmt.Errorf("%s: slice indexer: %w", name, err)
	}
	c.slices = sliceInf.GetIndexer()
	if _, err := sliceInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueSliceService,
		UpdateFunc: func(_, obj any) { c.enqueueSliceService(obj) },
		DeleteFunc: c.enqueueSliceService,
	}); err != nil {
		return nil, fmt.Errorf("%s: slice handler: %w", name, err)
	}
	c.synced = []cache.InformerSynced{svcInf.Informer().HasSynced, podInf.Informer().HasSynced, nodeInf.Informer().HasSynced, sliceInf.HasSynced}
	return c, nil
}

// Start waits for the caches to sync, reconciles Services with the
// configured workers until ctx ends, and returns after they have exited.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting", "workers", c.opts.Workers)
	return c.queue.Run(ctx, c.opts.Workers, c.synced...)
}

// indexSliceByService indexes a slice managed by this controller by its
// service's key.
func indexSliceByService(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok || s.Labels[discoveryv1.LabelManagedBy] != ManagedBy {
		return nil, nil
	}
	svc := s.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return nil, nil
	}
	return []string{s.Namespace + "/" + svc}, nil
}

func (c *Controller) enqueueSliceService(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	keys, _ := indexSliceByService(obj)
	for _, k := range keys {
		c.queue.Add(k)
	}
}

func PodOf(obj any) *corev1.Pod {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, _ := obj.(*corev1.Pod)
	return p
}

// PodAddressChanged reports whether an update can change the pod's endpoints.
func PodAddressChanged(o, n *corev1.Pod) bool {
	return !maps.Equal(o.Labels, n.Labels) ||
		o.Status.PodIP != n.Status.PodIP ||
		!slices.Equal(o.Status.PodIPs, n.Status.PodIPs) ||
		podset.IsReady(o) != podset.IsReady(n) ||
		(o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) ||
		o.Spec.NodeName != n.Spec.NodeName ||
		o.Spec.Hostname != n.Spec.Hostname ||
		o.Spec.Subdomain != n.Spec.Subdomain ||
		o.Status.Phase != n.Status.Phase
}

// enqueuePodServices queues every Service in the pod's namespace whose
// selector matches it.
func (c *Controller) enqueuePodServices(p *corev1.Pod) {
	for _, key := range SelectingServices(c.services, p) {
		c.queue.Add(key)
	}
}

// SelectingServices returns the keys of the Services in the pod's
// namespace whose selector matches it (services without a selector never
// do).
func SelectingServices(services corelisters.ServiceLister, p *corev1.Pod) []string {
	if p == nil {
		return nil
	}
	svcs, err := services.Services(p.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	set := labels.Set(p.Labels)
	var keys []string
	for _, s := range svcs {
		if len(s.Spec.Selector) > 0 && labels.SelectorFromValidatedSet(s.Spec.Selector).Matches(set) {
			keys = append(keys, s.Namespace+"/"+s.Name)
		}
	}
	return keys
}

func (c *Controller) enqueueAllServices() {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, s := range svcs {
		c.queue.Add(s.Namespace + "/" + s.Name)
	}
}

func (c *Controller) zoneOf(node string) string {
	n, err := c.nodes.Get(node)
	if err != nil {
		return ""
	}
	return n.Labels[corev1.LabelTopologyZone]
}
