package servicelb

import (
	"context"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
)

// sync brings the load balancer of the Service named key in line with the
// Service: ensured while it wants one, deleted (and the finalizer and our
// status removed) once it does not.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return c.gone(ctx, ns, name)
	}
	if err != nil {
		return err
	}
	_, provisioned, err := c.balancer.GetLoadBalancer(ctx, svc)
	if err != nil {
		return c.failed(svc, fmt.Errorf("failed to check if load balancer exists before cleanup: %w", err))
	}
	switch decide(svc, provisioned) {
	case actionEnsure:
		return c.ensure(ctx, svc)
	case actionCleanup:
		return c.cleanup(ctx, svc, provisioned)
	}
	c.setWaiting(key, false)
	return nil
}

// failed records a failed sync on svc and returns err for a retry with
// back-off.
// A conflict is no failure worth an event: the informer is about to
// deliver the newer Service, and the retry comes at once.
func (c *Controller) failed(svc *corev1.Service, err error) error {
	if apierrors.IsConflict(err) {
		return err
	}
	c.recorder.Eventf(svc, corev1.EventTypeWarning, "SyncLoadBalancerFailed", "Error syncing load balancer: %v", err)
	c.setWaiting(svc.Namespace+"/"+svc.Name, true)
	return fmt.Errorf("service %s/%s: %w", svc.Namespace, svc.Name, err)
}

// ensure adds the finalizer, has the provider ensure the load balancer and
// writes its status.
func (c *Controller) ensure(ctx context.Context, svc *corev1.Service) error {
	c.recorder.Event(svc, corev1.EventTypeNormal, "EnsuringLoadBalancer", "Ensuring load balancer")
	// The finalizer goes on before anything is provisioned, so the Service
	// cannot vanish with a load balancer left behind.
	cur := svc
	if !hasFinalizer(svc) {
		next := svc.DeepCopy()
		next.Finalizers = append(next.Finalizers, Finalizer)
		updated, err := c.client.CoreV1().Services(svc.Namespace).Update(ctx, next, metav1.UpdateOptions{})
		if err != nil {
			return c.failed(svc, fmt.Errorf("failed to add load balancer cleanup finalizer: %w", err))
		}
		cur = updated
	}
	hosts, err := c.eligibleNodes()
	if err != nil {
		return err
	}
	if len(hosts) == 0 {
		c.recorder.Event(svc, corev1.EventTypeWarning, "UnAvailableLoadBalancer", "There are no available nodes for LoadBalancer")
	}
	status, err := c.balancer.EnsureLoadBalancer(ctx, cur, hosts)
	if err == nil && status == nil {
		err = fmt.Errorf("service status returned by EnsureLoadBalancer is nil")
	}
	if err != nil {
		return c.failed(svc, fmt.Errorf("failed to ensure load balancer: %w", err))
	}
	c.setWaiting(svc.Namespace+"/"+svc.Name, false)
	c.recorder.Event(svc, corev1.EventTypeNormal, "EnsuredLoadBalancer", "Ensured load balancer")
	if err := c.writeStatus(ctx, cur, status); err != nil {
		return fmt.Errorf("service %s/%s: failed to update load balancer status: %w", svc.Namespace, svc.Name, err)
	}
	return nil
}

// cleanup deletes svc's load balancer, removes the finalizer and clears
// the status this controller wrote.
func (c *Controller) cleanup(ctx context.Context, svc *corev1.Service, provisioned bool) error {
	if provisioned {
		c.recorder.Event(svc, corev1.EventTypeNormal, "DeletingLoadBalancer", "Deleting load balancer")
		if err := c.balancer.EnsureLoadBalancerDeleted(ctx, svc); err != nil {
			return c.failed(svc, fmt.Errorf("failed to delete load balancer: %w", err))
		}
		c.released()
	}
	cur := svc
	if hasFinalizer(svc) {
		next := svc.DeepCopy()
		next.Finalizers = slices.DeleteFunc(next.Finalizers, func(f string) bool { return f == Finalizer })
		updated, err := c.client.CoreV1().Services(svc.Namespace).Update(ctx, next, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			// The last finalizer is gone and so is the Service.
			c.recorder.Event(svc, corev1.EventTypeNormal, "DeletedLoadBalancer", "Deleted load balancer")
			return nil
		}
		if err != nil {
			return c.failed(svc, fmt.Errorf("failed to remove load balancer cleanup finalizer: %w", err))
		}
		cur = updated
	}
	c.setWaiting(svc.Namespace+"/"+svc.Name, false)
	c.recorder.Event(svc, corev1.EventTypeNormal, "DeletedLoadBalancer", "Deleted load balancer")
	// A Service with a loadBalancerClass has its status written by the
	// implementation of that class: leave it alone.
	if cur.Spec.LoadBalancerClass != nil || cur.DeletionTimestamp != nil {
		return nil
	}
	if err := c.writeStatus(ctx, cur, &corev1.LoadBalancerStatus{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("service %s/%s: failed to update load balancer status: %w", svc.Namespace, svc.Name, err)
	}
	return nil
}

// gone releases the load balancer of a Service that no longer exists
// (deleted without our finalizer). No event: the object is gone.
func (c *Controller) gone(ctx context.Context, ns, name string) error {
	c.setWaiting(ns+"/"+name, false)
	stub := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	_, exists, err := c.balancer.GetLoadBalancer(ctx, stub)
	if err != nil || !exists {
		return err
	}
	if err := c.balancer.EnsureLoadBalancerDeleted(ctx, stub); err != nil {
		return fmt.Errorf("service %s/%s: failed to delete load balancer: %w", ns, name, err)
	}
	c.log.Info("deleted load balancer of a deleted service", "service", ns+"/"+name)
	c.released()
	return nil
}

// writeStatus sets svc's status.loadBalancer to status unless it is
// already that.
func (c *Controller) writeStatus(ctx context.Context, svc *corev1.Service, status *corev1.LoadBalancerStatus) error {
	if statusEqual(&svc.Status.LoadBalancer, status) {
		return nil
	}
	next := svc.DeepCopy()
	next.Status.LoadBalancer = *status
	_, err := c.client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	return err
}

// setWaiting records whether the Service named key waits for a retry
// after a failed sync.
func (c *Controller) setWaiting(key string, waiting bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if waiting {
		c.waiting[key] = true
	} else {
		delete(c.waiting, key)
	}
}

// released requeues the Services waiting after a failed sync: a load
// balancer was just deleted, and what it freed (an address of a full
// pool) may be what they wait for.
func (c *Controller) released() {
	c.mu.Lock()
	keys := slices.Collect(maps.Keys(c.waiting))
	c.mu.Unlock()
	for _, k := range keys {
		c.queue.Add(k)
	}
}

// eligibleNodes lists the nodes load balancers may send traffic to.
func (c *Controller) eligibleNodes() ([]*corev1.Node, error) {
	all, err := c.nodes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var out []*corev1.Node
	for _, n := range all {
		if eligibleNode(n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func nodeNames(nodes []*corev1.Node) []string {
	names := make([]string, 0, len(nodes))
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	return names
}

// syncNodes points every provisioned load balancer at the current set of
// eligible nodes when that set changed, and retries the ones that failed
// last time.
func (c *Controller) syncNodes(ctx context.Context, _ string) error {
	hosts, err := c.eligibleNodes()
	if err != nil {
		return err
	}
	names := nodeNames(hosts)
	todo := c.retryHosts
	if !slices.Equal(names, c.knownHosts) {
		todo = map[string]bool{}
		svcs, err := c.services.List(labels.Everything())
		if err != nil {
			return err
		}
		for _, svc := range svcs {
			if wantsLoadBalancer(svc) && hasFinalizer(svc) && svc.DeletionTimestamp == nil {
				todo[svc.Namespace+"/"+svc.Name] = true
			}
		}
		c.knownHosts = names
	}
	failed := map[string]bool{}
	for key := range todo {
		ns, name, _ := cache.SplitMetaNamespaceKey(key)
		svc, err := c.services.Services(ns).Get(name)
		if err != nil || !wantsLoadBalancer(svc) || svc.DeletionTimestamp != nil {
			continue
		}
		if err := c.updateHosts(ctx, svc, hosts); err != nil {
			c.log.Info("updating load balancer hosts failed", "service", key, "err", err)
			failed[key] = true
		}
	}
	c.retryHosts = failed
	if len(failed) > 0 {
		return fmt.Errorf("updating the hosts of %d load balancers failed", len(failed))
	}
	return nil
}

// updateHosts points svc's load balancer at hosts.
func (c *Controller) updateHosts(ctx context.Context, svc *corev1.Service, hosts []*corev1.Node) error {
	err := c.balancer.UpdateLoadBalancer(ctx, svc, hosts)
	if err == nil {
		if len(hosts) == 0 {
			c.recorder.Event(svc, corev1.EventTypeWarning, "UnAvailableLoadBalancer", "There are no available nodes for LoadBalancer")
		} else {
			c.recorder.Event(svc, corev1.EventTypeNormal, "UpdatedLoadBalancer", "Updated load balancer with new hosts")
		}
		return nil
	}
	// Only an error if the load balancer still exists.
	if _, exists, gerr := c.balancer.GetLoadBalancer(ctx, svc); gerr == nil && !exists {
		return nil
	}
	c.recorder.Eventf(svc, corev1.EventTypeWarning, "UpdateLoadBalancerFailed", "Error updating load balancer with new hosts %v: %v", nodeNames(hosts), err)
	return err
}
