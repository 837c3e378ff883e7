package nodelifecycle

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// syncPod acts for one pod bound to a node: deletes it when its node does
// not exist, marks it not ready when its node is not Ready, and evicts it
// when the node's NoExecute taints say so.
func (c *Controller) syncPod(ctx context.Context, key string) error {
	ns, podName, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(ns).Get(podName)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" || pod.DeletionTimestamp != nil {
		return nil
	}
	node, err := c.nodes.Get(pod.Spec.NodeName)
	if apierrors.IsNotFound(err) {
		return c.deleteOrphan(ctx, pod)
	}
	if err != nil {
		return err
	}
	if err := c.markNotReady(ctx, node, pod); err != nil {
		return err
	}
	evict, at := evictionTime(node.Spec.Taints, pod.Spec.Tolerations, c.since(node.Name))
	if !evict {
		return nil
	}
	if d := at.Sub(c.clock.Now()); d > 0 {
		c.podQ.AddAfter(key, d)
		return nil
	}
	uid := pod.UID
	c.mu.Lock()
	_, done := c.evicted[uid]
	c.evicted[uid] = struct{}{}
	c.mu.Unlock()
	if done {
		return nil
	}
	c.recorder.Eventf(pod, corev1.EventTypeNormal, "TaintManagerEviction", "Marking for deletion Pod %s/%s", pod.Namespace, pod.Name)
	c.log.Info("evicting pod from tainted node", "pod", key, "node", node.Name)
	err = c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		c.mu.Lock()
		delete(c.evicted, uid) // not evicted after all: the retry may
		c.mu.Unlock()
	}
	return err
}

// podDeleted forgets an evicted pod once it is gone.
func (c *Controller) podDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if p, ok := obj.(*corev1.Pod); ok {
		c.mu.Lock()
		delete(c.evicted, p.UID)
		c.mu.Unlock()
	}
}

// deleteOrphan deletes, with grace 0, a pod whose node the cache does not
// have, once a live GET confirms the node is gone (the node may be newer
// than the cache).
func (c *Controller) deleteOrphan(ctx context.Context, pod *corev1.Pod) error {
	_, err := c.client.CoreV1().Nodes().Get(ctx, pod.Spec.NodeName, metav1.GetOptions{})
	if err == nil {
		return nil // the informer is behind; its event will come
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("checking node %s: %w", pod.Spec.NodeName, err)
	}
	c.log.Info("deleting pod of a node that does not exist", "pod", pod.Namespace+"/"+pod.Name, "node", pod.Spec.NodeName)
	uid := pod.UID
	err = c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64),
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// markNotReady sets a pod's Ready condition False when its node has a
// Ready condition that is not True (upstream's MarkPodsNotReady).
func (c *Controller) markNotReady(ctx context.Context, node *corev1.Node, pod *corev1.Pod) error {
	nr := condition(node, corev1.NodeReady)
	if nr == nil || nr.Status == corev1.ConditionTrue {
		return nil
	}
	for i, pc := range pod.Status.Conditions {
		if pc.Type != corev1.PodReady || pc.Status == corev1.ConditionFalse {
			continue
		}
		next := pod.DeepCopy()
		next.Status.Conditions[i].Status = corev1.ConditionFalse
		next.Status.Conditions[i].LastTransitionTime = metav1.NewTime(c.clock.Now())
		if _, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("marking pod %s/%s not ready: %w", pod.Namespace, pod.Name, err)
		}
		return nil
	}
	return nil
}
