package replicaset

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-io/skiff/internal/controller/podset"
)

// sync reconciles one ReplicaSet: claim pods, create or delete to reach
// spec.replicas (only when expectations are satisfied and the ReplicaSet
// is not being deleted), then write status if it changed. An error from
// creating or deleting is returned after status is written, so the key is
// retried with back-off.
func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, rsName, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	rs, err := c.src.Get(namespace, rsName)
	if apierrors.IsNotFound(err) {
		c.exp.Forget(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", c.kind, key, err)
	}
	selector, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil || selector.Empty() {
		// Validation rejects these; never act on a selector that
		// matches everything.
		c.log.Info("invalid selector", c.kind, key, "err", err)
		return nil
	}
	canAct := c.exp.Satisfied(key, time.Now()) && rs.DeletionTimestamp == nil

	pods, err := c.claim(ctx, rs, selector)
	if err != nil {
		return err
	}

	var manageErr error
	create, del := 0, 0
	if canAct {
		want := int32(1)
		if rs.Spec.Replicas != nil {
			want = *rs.Spec.Replicas
		}
		create, del = diff(len(pods), want, burstReplicas)
		switch {
		case create > 0:
			manageErr = c.createPods(ctx, rs, key, create)
		case del > 0:
			manageErr = c.deletePods(ctx, rs, key, podsToDelete(pods, del))
		}
	}

	st, wait := calculateStatus(rs, pods, manageErr, create > 0, c.now())
	if !equality.Semantic.DeepEqual(st, rs.Status) {
		upd := rs.DeepCopy()
		upd.Status = st
		if err := c.src.UpdateStatus(ctx, upd); err != nil {
			return errors.Join(manageErr, fmt.Errorf("%s %s: update status: %w", c.kind, key, err))
		}
	}
	if wait > 0 {
		c.queue.AddAfter(key, wait)
	}
	return manageErr
}

// claim returns the active pods rs controls after adopting matching
// orphans and releasing owned pods that no longer match. Candidates come
// from the indexes: pods controlled by rs and orphans in its namespace.
func (c *Controller) claim(ctx context.Context, rs *appsv1.ReplicaSet, selector labels.Selector) ([]*corev1.Pod, error) {
	owned, err := podset.PodsControlledBy(c.pods, rs.UID)
	if err != nil {
		return nil, fmt.Errorf("%s %s/%s: pods by controller: %w", c.kind, rs.Namespace, rs.Name, err)
	}
	orphans, err := podset.OrphanPods(c.pods, rs.Namespace)
	if err != nil {
		return nil, fmt.Errorf("%s %s/%s: orphan pods: %w", c.kind, rs.Namespace, rs.Name, err)
	}
	candidates := make([]*corev1.Pod, 0, len(owned)+len(orphans))
	for _, list := range [][]*corev1.Pod{owned, orphans} {
		for _, p := range list {
			if podset.IsActive(p) {
				candidates = append(candidates, p)
			}
		}
	}
	mine, adopt, release := podset.Claim(candidates, rs.UID, selector, rs.DeletionTimestamp != nil)

	if len(adopt) > 0 && c.canAdopt(ctx, rs) {
		for _, p := range adopt {
			patched, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType,
				podset.AdoptPatch(p, rs, c.gvk), metav1.PatchOptions{})
			if err != nil {
				// Gone, or changed owner meanwhile: the informer
				// event will bring the truth.
				c.log.Debug("adopting pod failed", "pod", p.Name, "err", err)
				continue
			}
			mine = append(mine, patched)
		}
	}
	for _, p := range release {
		_, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType,
			podset.ReleasePatch(p, rs.UID), metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			c.log.Debug("releasing pod failed", "pod", p.Name, "err", err)
		}
	}
	return mine, nil
}

// canAdopt re-reads rs from the server before adopting: a ReplicaSet that
// is being deleted (or was replaced) must not take pods, and the cache may
// not know yet.
func (c *Controller) canAdopt(ctx context.Context, rs *appsv1.ReplicaSet) bool {
	fresh, err := c.src.Fetch(ctx, rs.Namespace, rs.Name)
	return err == nil && fresh.UID == rs.UID && fresh.DeletionTimestamp == nil
}

// createPods creates n pods in slow-start batches, stopping at the first
// batch with an error. Expectations are raised first and lowered for every
// create that failed or was skipped.
func (c *Controller) createPods(ctx context.Context, rs *appsv1.ReplicaSet, key string, n int) error {
	c.exp.Expect(key, n, nil, time.Now())
	done := 0
	for _, size := range slowStartBatches(n) {
		errs := make([]error, size)
		var wg sync.WaitGroup
		for i := range size {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = c.createPod(ctx, rs, key)
			}()
		}
		wg.Wait()
		done += size
		if err := errors.Join(errs...); err != nil {
			for range n - done {
				c.exp.CreationObserved(key)
			}
			return err
		}
	}
	return nil
}

func (c *Controller) createPod(ctx context.Context, rs *appsv1.ReplicaSet, key string) error {
	pod := podset.FromTemplate(&rs.Spec.Template, rs, c.gvk, "", rs.Name+"-")
	created, err := c.client.CoreV1().Pods(rs.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		c.exp.CreationObserved(key)
		c.recorder.Eventf(c.eventObject(rs), corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		return fmt.Errorf("%s %s: create pod: %w", c.kind, key, err)
	}
	c.recorder.Eventf(c.eventObject(rs), corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", created.Name)
	return nil
}

// deletePods deletes pods (in parallel, each with its UID as a
// precondition so that a replacement of the same name is never hit).
func (c *Controller) deletePods(ctx context.Context, rs *appsv1.ReplicaSet, key string, pods []*corev1.Pod) error {
	keys := make([]string, len(pods))
	for i, p := range pods {
		keys[i] = keyOf(p.Namespace, p.Name)
	}
	c.exp.Expect(key, 0, keys, time.Now())
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			uid := p.UID
			err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
				Preconditions: &metav1.Preconditions{UID: &uid},
			})
			if err == nil {
				c.recorder.Eventf(c.eventObject(rs), corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
				return
			}
			// Not deleted by us: its deletion will not be observed.
			c.exp.DeletionObserved(key, keys[i])
			if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
				return // already gone (or replaced): nothing to delete
			}
			c.recorder.Eventf(c.eventObject(rs), corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
			errs[i] = fmt.Errorf("%s %s: delete pod %s: %w", c.kind, key, p.Name, err)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
