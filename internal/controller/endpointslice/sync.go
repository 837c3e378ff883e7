package endpointslice

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
)

// sync reconciles the slices of the Service named by key.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, svcName, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	svc, err := c.services.Services(ns).Get(svcName)
	if apierrors.IsNotFound(err) {
		// The slices are owned by the Service: the garbage collector
		// deletes them.
		c.tracker.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if len(svc.Spec.Selector) == 0 || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil // endpoints of selector-less services are the user's
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromValidatedSet(svc.Spec.Selector))
	if err != nil {
		return fmt.Errorf("listing pods of service %s: %w", key, err)
	}
	objs, err := c.slices.ByIndex(indexByService, key)
	if err != nil {
		return fmt.Errorf("slices of service %s: %w", key, err)
	}
	existing := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if s, ok := o.(*discoveryv1.EndpointSlice); ok {
			existing = append(existing, s)
		}
	}
	if c.tracker.stale(key, existing) {
		// Our last writes are not in the cache yet; their events
		// requeue the service. The delayed add covers a lost event.
		c.queue.AddAfter(key, time.Second)
		return nil
	}
	p := planSlices(svc, existing, desired(svc, pods, c.zoneOf), c.opts.MaxEndpointsPerSlice, TriggerTime(svc, pods))
	if p.empty() {
		return nil
	}
	return c.apply(ctx, key, svc, p)
}

// apply performs a plan: creates first, then updates, then deletes, so that
// endpoints moving between slices are never missing from all of them.
func (c *Controller) apply(ctx context.Context, key string, svc *corev1.Service, p plan) error {
	api := c.client.DiscoveryV1().EndpointSlices(svc.Namespace)
	for _, s := range p.create {
		got, err := api.Create(ctx, s, metav1.CreateOptions{})
		if err != nil {
			if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				return nil
			}
			return fmt.Errorf("creating slice for service %s: %w", key, err)
		}
		c.tracker.wrote(key, got)
	}
	for _, s := range p.update {
		got, err := api.Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("updating slice %s of service %s: %w", s.Name, key, err)
		}
		c.tracker.wrote(key, got)
	}
	for _, s := range p.delete {
		err := api.Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting slice %s of service %s: %w", s.Name, key, err)
		}
		c.tracker.deleted(key, s.Name)
	}
	c.log.Debug("slices reconciled", "service", key, "created", len(p.create), "updated", len(p.update), "deleted", len(p.delete))
	return nil
}

// TriggerTime is the last-change-trigger-time annotation value: the latest
// change among the service and its pods that can have caused this write
// (creation, readiness transition), an approximation of upstream's
// trigger-time tracker.
func TriggerTime(svc *corev1.Service, pods []*corev1.Pod) string {
	t := svc.CreationTimestamp.Time
	for _, p := range pods {
		if p == nil {
			continue
		}
		pt := p.CreationTimestamp.Time
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.LastTransitionTime.After(pt) {
				pt = c.LastTransitionTime.Time
			}
		}
		if pt.After(t) {
			t = pt
		}
	}
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
