// Package endpoints is the Endpoints controller: for every Service with a
// selector it keeps the legacy core/v1 Endpoints object of the same name,
// with the matching pods' IPs as ready addresses or notReadyAddresses and
// the service's ports resolved against them. Terminating pods are left out
// (unless the service publishes not-ready addresses) and more than 1000
// addresses are truncated with the endpoints.kubernetes.io/over-capacity
// annotation, as upstream. Endpoints carry no owner reference, so the
// controller deletes them itself when their Service goes away.
//
// subsets (subsets.go) is the pure decision; this file wires informers and
// writes only when the subsets, labels or capacity annotation changed.
package endpoints

import (
	"context"
	"fmt"
	"log/slog"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-io/skiff/internal/controller/endpointslice"
	"github.com/skiff-io/skiff/internal/controller/reconcile"
)

const name = "endpoints"

// Annotation and label values as upstream writes them.
const (
	annotationOverCapacity = corev1.EndpointsOverCapacity
	overCapacityTruncated  = "truncated"
	annotationTriggerTime  = corev1.EndpointsLastChangeTriggerTime
	// labelSkipMirror tells an EndpointSlice mirroring controller that
	// these Endpoints already have slices (ours come from the endpointslice
	// controller).
	labelSkipMirror = "endpointslice.kubernetes.io/skip-mirror"
)

// Options tune the controller.
type Options struct {
	// Workers is the number of Services reconciled at once (default 5).
	Workers int
}

// Controller is the Endpoints controller.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	workers  int

	services  corelisters.ServiceLister
	pods      corelisters.PodLister
	endpoints corelisters.EndpointsLister
	synced    []cache.InformerSynced
	queue     *reconcile.Queue
}

// New builds the controller and registers its Service, Pod and Endpoints
// informers and event handlers on factory. The caller starts the factory;
// Start waits for it to sync.
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
	if recorder == nil {
		recorder = &record.FakeRecorder{}
	}
	c := &Controller{client: client, recorder: recorder, log: slog.Default().With("controller", name), workers: o.Workers}
	c.queue = reconcile.New(name, c.sync)

	svcInf := factory.Core().V1().Services()
	c.services = svcInf.Lister()
	if _, err := svcInf.Informer().AddEventHandler(c.queue.Handler()); err != nil {
		return nil, fmt.Errorf("%s: service handler: %w", name, err)
	}
	podInf := factory.Core().V1().Pods()
	c.pods = podInf.Lister()
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.enqueuePodServices(endpointslice.PodOf(obj)) },
		UpdateFunc: func(old, cur any) {
			o, n := endpointslice.PodOf(old), endpointslice.PodOf(cur)
			if o == nil || n == nil || !endpointslice.PodAddressChanged(o, n) {
				return
			}
			c.enqueuePodServices(n)
			if !maps.Equal(o.Labels, n.Labels) {
				c.enqueuePodServices(o)
			}
		},
		DeleteFunc: func(obj any) { c.enqueuePodServices(endpointslice.PodOf(obj)) },
	}); err != nil {
		return nil, fmt.Errorf("%s: pod handler: %w", name, err)
	}
	epInf := factory.Core().V1().Endpoints()
	c.endpoints = epInf.Lister()
	// Only deletions: an Endpoints deleted under a live Service is
	// recreated. Other changes are corrected on the next Service or Pod
	// event, as upstream.
	if _, err := epInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: c.queue.Enqueue}); err != nil {
		return nil, fmt.Errorf("%s: endpoints handler: %w", name, err)
	}
	c.synced = []cache.InformerSynced{svcInf.Informer().HasSynced, podInf.Informer().HasSynced, epInf.Informer().HasSynced}
	return c, nil
}

// Start waits for the caches to sync, reconciles Services with the
// configured workers until ctx ends, and returns after they have exited.
func (c *Controller) Start(ctx context.Context) error {
	c.log.Info("starting", "workers", c.workers)
	return c.queue.Run(ctx, c.workers, c.synced...)
}

// sync reconciles the Endpoints of the Service named by key.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, svcName, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	api := c.client.CoreV1().Endpoints(ns)
	svc, err := c.services.Services(ns).Get(svcName)
	if apierrors.IsNotFound(err) {
		if _, err := c.endpoints.Endpoints(ns).Get(svcName); err != nil {
			return nil
		}
		err := api.Delete(ctx, svcName, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting endpoints %s: %w", key, err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if len(svc.Spec.Selector) == 0 || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromValidatedSet(svc.Spec.Selector))
	if err != nil {
		return fmt.Errorf("listing pods of service %s: %w", key, err)
	}
	subs, truncated := subsets(svc, pods, MaxAddresses)
	current, err := c.endpoints.Endpoints(ns).Get(svcName)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	next := build(svc, current, subs, truncated)
	if current != nil && upToDate(current, next) {
		return nil
	}
	if t := endpointslice.TriggerTime(svc, pods); t != "" {
		next.Annotations[annotationTriggerTime] = t
	}
	if current == nil {
		_, err = api.Create(ctx, next, metav1.CreateOptions{})
		if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return nil
		}
	} else {
		_, err = api.Update(ctx, next, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("writing endpoints %s: %w", key, err)
	}
	return nil
}

// build returns the Endpoints object to write: current (if any) with the
// new subsets, the service's labels plus skip-mirror, and the capacity
// annotation set or cleared.
func build(svc *corev1.Service, current *corev1.Endpoints, subs []corev1.EndpointSubset, truncated bool) *corev1.Endpoints {
	var next *corev1.Endpoints
	if current != nil {
		next = current.DeepCopy()
	} else {
		next = &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace}}
	}
	next.Subsets = subs
	l := maps.Clone(svc.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[labelSkipMirror] = "true"
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		l[corev1.IsHeadlessService] = ""
	} else {
		delete(l, corev1.IsHeadlessService)
	}
	next.Labels = l
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	if truncated {
		next.Annotations[annotationOverCapacity] = overCapacityTruncated
	} else {
		delete(next.Annotations, annotationOverCapacity)
	}
	return next
}

// upToDate reports whether current already says what next says.
func upToDate(current, next *corev1.Endpoints) bool {
	return maps.Equal(current.Labels, next.Labels) &&
		current.Annotations[annotationOverCapacity] == next.Annotations[annotationOverCapacity] &&
		equalSubsets(current.Subsets, next.Subsets)
}

// equalSubsets compares subsets treating nil and empty lists alike (the
// server drops empty lists).
func equalSubsets(a, b []corev1.EndpointSubset) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return apiequality.Semantic.DeepEqual(normalize(a), normalize(b))
}

func normalize(in []corev1.EndpointSubset) []corev1.EndpointSubset {
	out := make([]corev1.EndpointSubset, 0, len(in))
	for _, s := range in {
		s = *s.DeepCopy()
		if len(s.Addresses) == 0 {
			s.Addresses = nil
		}
		if len(s.NotReadyAddresses) == 0 {
			s.NotReadyAddresses = nil
		}
		if len(s.Ports) == 0 {
			s.Ports = nil
		}
		out = append(out, s)
	}
	return out
}

// enqueuePodServices queues every Service in the pod's namespace whose
// selector matches it.
func (c *Controller) enqueuePodServices(p *corev1.Pod) {
	for _, key := range endpointslice.SelectingServices(c.services, p) {
		c.queue.Add(key)
	}
}
