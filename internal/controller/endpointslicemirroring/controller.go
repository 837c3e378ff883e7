// Package endpointslicemirroring is upstream's EndpointSlice mirroring
// controller: the Endpoints of a Service without a selector (written by
// the user, or by another controller) are mirrored into EndpointSlices, so
// that consumers of slices (the proxy, dns) see custom endpoints too.
// Endpoints labelled endpointslice.kubernetes.io/skip-mirror (the
// endpoints controller's own) are left alone: the EndpointSlice controller
// already writes their slices.
package endpointslicemirroring

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

// Name is the controller's --controllers name.
const Name = "endpointslicemirroring"

const indexByEndpoints = "endpointslicemirroring.skiff.io/endpoints"

// Controller is the mirroring controller. Its keys are namespace/name of
// a Service and its Endpoints (they share the name).
type Controller struct {
	client    kubernetes.Interface
	recorder  record.EventRecorder
	log       *slog.Logger
	services  corelisters.ServiceLister
	endpoints corelisters.EndpointsLister
	slices    cache.Indexer
	synced    []cache.InformerSynced
	queue     *reconcile.Queue
}

// New builds the controller on factory's Service, Endpoints and
// EndpointSlice informers. The caller starts the factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) (*Controller, error) {
	if client == nil || factory == nil {
		return nil, fmt.Errorf("%s: client and informer factory are required", Name)
	}
	if recorder == nil {
		recorder = &record.FakeRecorder{}
	}
	c := &Controller{client: client, recorder: recorder, log: slog.Default().With("controller", Name)}
	c.queue = reconcile.New(Name, c.sync)
	svcInf := factory.Core().V1().Services()
	epInf := factory.Core().V1().Endpoints()
	c.services, c.endpoints = svcInf.Lister(), epInf.Lister()
	for what, inf := range map[string]cache.SharedIndexInformer{"service": svcInf.Informer(), "endpoints": epInf.Informer()} {
		if _, err := inf.AddEventHandler(c.queue.Handler()); err != nil {
			return nil, fmt.Errorf("%s: %s handler: %w", Name, what, err)
		}
	}
	sliceInf := factory.Discovery().V1().EndpointSlices().Informer()
	if err := sliceInf.AddIndexers(cache.Indexers{indexByEndpoints: indexSlice}); err != nil {
		return nil, fmt.Errorf("%s: slice indexer: %w", Name, err)
	}
	c.slices = sliceInf.GetIndexer()
	if _, err := sliceInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueSlice,
		UpdateFunc: func(_, obj any) { c.enqueueSlice(obj) },
		DeleteFunc: c.enqueueSlice,
	}); err != nil {
		return nil, fmt.Errorf("%s: slice handler: %w", Name, err)
	}
	c.synced = []cache.InformerSynced{svcInf.Informer().HasSynced, epInf.Informer().HasSynced, sliceInf.HasSynced}
	return c, nil
}

// Start reconciles until ctx ends.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting")
	return c.queue.Run(ctx, 2, c.synced...)
}

// indexSlice indexes a mirrored slice by its Service's key.
func indexSlice(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok || s.Labels[discoveryv1.LabelManagedBy] != ManagedBy || s.Labels[discoveryv1.LabelServiceName] == "" {
		return nil, nil
	}
	return []string{s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName]}, nil
}

func (c *Controller) enqueueSlice(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	keys, _ := indexSlice(obj)
	for _, k := range keys {
		c.queue.Add(k)
	}
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	svc, err := c.services.Services(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	ep, err := c.endpoints.Endpoints(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	objs, err := c.slices.ByIndex(indexByEndpoints, key)
	if err != nil {
		return err
	}
	existing := map[string]*discoveryv1.EndpointSlice{}
	for _, o := range objs {
		if s, ok := o.(*discoveryv1.EndpointSlice); ok {
			existing[s.Name] = s
		}
	}
	var want []*discoveryv1.EndpointSlice
	if mirrored(svc, ep) {
		var truncated bool
		want, truncated = desiredSlices(ep)
		if truncated {
			c.recorder.Eventf(ep, corev1.EventTypeWarning, "TooManyEndpoints",
				"a subset has more than %d addresses: the rest are not mirrored to EndpointSlices", MaxEndpointsPerSubset)
		}
	}
	slices := c.client.DiscoveryV1().EndpointSlices(ns)
	for _, s := range want {
		cur, ok := existing[s.Name]
		delete(existing, s.Name)
		switch {
		case !ok:
			if _, err := slices.Create(ctx, s, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create endpointslice %s/%s: %w", ns, s.Name, err)
			}
		case !same(cur, s):
			s.ResourceVersion = cur.ResourceVersion
			if _, err := slices.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("update endpointslice %s/%s: %w", ns, s.Name, err)
			}
		}
	}
	for _, s := range existing {
		err := slices.Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete endpointslice %s/%s: %w", ns, s.Name, err)
		}
	}
	return nil
}

// same reports whether cur already holds what want says.
func same(cur, want *discoveryv1.EndpointSlice) bool {
	return cur.AddressType == want.AddressType &&
		apiequality.Semantic.DeepEqual(cur.Endpoints, want.Endpoints) &&
		apiequality.Semantic.DeepEqual(cur.Ports, want.Ports) &&
		apiequality.Semantic.DeepEqual(cur.Labels, want.Labels) &&
		apiequality.Semantic.DeepEqual(cur.Annotations, want.Annotations) &&
		apiequality.Semantic.DeepEqual(cur.OwnerReferences, want.OwnerReferences)
}
