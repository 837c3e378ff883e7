package statefulset

import (
	"context"
	"errors"
	"fmt"

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

// sync reconciles one set: claim its pods, make sure the update revision
// exists, carry out the plan (unless the set is being deleted), write
// status if it changed, and trim revision history.
func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, setName, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	set, err := c.sets.StatefulSets(namespace).Get(setName)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("statefulset %s: %w", key, err)
	}
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil || selector.Empty() {
		c.log.Info("invalid selector", "statefulset", key, "err", err)
		return nil
	}
	pods, err := c.claim(ctx, set, selector)
	if err != nil {
		return err
	}
	revs, err := c.ownedRevisions(set)
	if err != nil {
		return err
	}
	update, err := c.updateRevision(ctx, set, revs)
	if err != nil {
		return err
	}
	current := update
	byName := map[string]*appsv1.ControllerRevision{update.Name: update}
	for _, r := range revs {
		byName[r.Name] = r
		if r.Name == set.Status.CurrentRevision {
			current = r
		}
	}

	snap := snapshotOf(set, current.Name, update.Name, pods, c.now())
	var actErr error
	if set.DeletionTimestamp == nil {
		actErr = c.act(ctx, set, decide(snap), byName)
	}

	st := status(set, snap)
	if !equality.Semantic.DeepEqual(st, set.Status) {
		upd := set.DeepCopy()
		upd.Status = st
		if _, err := c.client.AppsV1().StatefulSets(namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return errors.Join(actErr, fmt.Errorf("statefulset %s: update status: %w", key, err))
		}
	}
	c.trimHistory(ctx, set, revs, st, pods)
	if wait := untilAvailable(snap); wait > 0 {
		c.queue.AddAfter(key, wait)
	}
	return actErr
}

// claim returns the pods set controls (including terminating ones: the
// ordered steps wait for them) after adopting orphans that match the
// selector and are named like the set's pods, and releasing pods that no
// longer match.
func (c *Controller) claim(ctx context.Context, set *appsv1.StatefulSet, selector labels.Selector) ([]*corev1.Pod, error) {
	owned, err := podset.PodsControlledBy(c.pods, set.UID)
	if err != nil {
		return nil, fmt.Errorf("statefulset %s/%s: pods by controller: %w", set.Namespace, set.Name, err)
	}
	orphans, err := podset.OrphanPods(c.pods, set.Namespace)
	if err != nil {
		return nil, fmt.Errorf("statefulset %s/%s: orphan pods: %w", set.Namespace, set.Name, err)
	}
	candidates := owned
	for _, p := range orphans {
		if _, member := ordinalOf(set.Name, p.Name); member {
			candidates = append(candidates, p)
		}
	}
	mine, adopt, release := podset.Claim(candidates, set.UID, selector, set.DeletionTimestamp != nil)
	if len(adopt) > 0 && c.canAdopt(ctx, set) {
		for _, p := range adopt {
			patched, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType,
				podset.AdoptPatch(p, set, gvk), metav1.PatchOptions{})
			if err != nil {
				c.log.Debug("adopting pod failed", "pod", p.Name, "err", err)
				continue
			}
			mine = append(mine, patched)
		}
	}
	for _, p := range release {
		_, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType,
			podset.ReleasePatch(p, set.UID), metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			c.log.Debug("releasing pod failed", "pod", p.Name, "err", err)
		}
	}
	return mine, nil
}

// canAdopt re-reads set from the server: a set being deleted (or
// replaced) must not take pods, and the cache may not know yet.
func (c *Controller) canAdopt(ctx context.Context, set *appsv1.StatefulSet) bool {
	fresh, err := c.client.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
	return err == nil && fresh.UID == set.UID && fresh.DeletionTimestamp == nil
}

func (c *Controller) ownedRevisions(set *appsv1.StatefulSet) ([]*appsv1.ControllerRevision, error) {
	objs, err := podset.ControlledBy(c.revisions, set.UID)
	if err != nil {
		return nil, fmt.Errorf("statefulset %s/%s: revisions: %w", set.Namespace, set.Name, err)
	}
	out := make([]*appsv1.ControllerRevision, 0, len(objs))
	for _, o := range objs {
		if r, ok := o.(*appsv1.ControllerRevision); ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// updateRevision returns the revision of set's current template, creating
// it (numbered after the highest) when none exists, or renumbering it as
// the newest when the template went back to an older revision (a
// rollback), as upstream does.
func (c *Controller) updateRevision(ctx context.Context, set *appsv1.StatefulSet, revs []*appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	data, err := revisionData(&set.Spec.Template)
	if err != nil {
		return nil, fmt.Errorf("statefulset %s/%s: %w", set.Namespace, set.Name, err)
	}
	want := newRevision(set, data, revisionHash(data, set.Status.CollisionCount), maxRevision(revs)+1)
	for _, r := range revs {
		if r.Name != want.Name {
			continue
		}
		if r.Revision == maxRevision(revs) {
			return r, nil
		}
		upd := r.DeepCopy()
		upd.Revision = maxRevision(revs) + 1
		got, err := c.client.AppsV1().ControllerRevisions(set.Namespace).Update(ctx, upd, metav1.UpdateOptions{})
		if err != nil {
			return nil, fmt.Errorf("statefulset %s/%s: renumber revision %s: %w", set.Namespace, set.Name, r.Name, err)
		}
		return got, nil
	}
	got, err := c.client.AppsV1().ControllerRevisions(set.Namespace).Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Created by an earlier reconcile the cache has not seen yet.
		got, err = c.client.AppsV1().ControllerRevisions(set.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
		if err == nil && !metav1.IsControlledBy(got, set) {
			err = fmt.Errorf("revision %s exists and is not controlled by the set", want.Name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("statefulset %s/%s: create revision: %w", set.Namespace, set.Name, err)
	}
	return got, nil
}

// act carries out a plan: creations (claims first, then the pod), the
// claims' owner references, then deletions (with the pod's UID as a
// precondition), which wait until every owner reference is written. A
// pod that already exists or is already gone means the cache was behind;
// the informer event that follows triggers the next reconcile.
func (c *Controller) act(ctx context.Context, set *appsv1.StatefulSet, p plan, revs map[string]*appsv1.ControllerRevision) error {
	var errs []error
	for _, cr := range p.create {
		err := c.createPod(ctx, set, cr, revs[cr.revision])
		if errors.Is(err, errClaimGoing) {
			c.log.Debug("pod waits for its claim to go", "statefulset", set.Namespace+"/"+set.Name, "ordinal", cr.ordinal)
			continue
		}
		if err != nil {
			errs = append(errs, err)
			break // later ordinals wait for this one
		}
	}
	owners := len(errs)
	for _, cl := range p.claims {
		if err := c.syncClaimOwners(ctx, set, cl.pod, cl.condemned); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > owners {
		return errors.Join(errs...)
	}
	for _, pod := range p.delete {
		uid := pod.UID
		err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		switch {
		case err == nil:
			c.recorder.Eventf(set, corev1.EventTypeNormal, "SuccessfulDelete", "delete Pod %s in StatefulSet %s successful", pod.Name, set.Name)
		case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		default:
			c.recorder.Eventf(set, corev1.EventTypeWarning, "FailedDelete", "delete Pod %s in StatefulSet %s failed error: %v", pod.Name, set.Name, err)
			errs = append(errs, fmt.Errorf("statefulset %s/%s: delete pod %s: %w", set.Namespace, set.Name, pod.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (c *Controller) createPod(ctx context.Context, set *appsv1.StatefulSet, cr create, rev *appsv1.ControllerRevision) error {
	template, err := templateOf(rev)
	if err != nil {
		return fmt.Errorf("statefulset %s/%s: %w", set.Namespace, set.Name, err)
	}
	pod := newPod(set, template, cr.ordinal, cr.revision)
	for _, claim := range newClaims(set, cr.ordinal) {
		if cur, err := c.claims.PersistentVolumeClaims(claim.Namespace).Get(claim.Name); err == nil {
			if claimGoing(cur, pod.Name) {
				return fmt.Errorf("statefulset %s/%s: pod %s: claim %s: %w", set.Namespace, set.Name, pod.Name, claim.Name, errClaimGoing)
			}
			continue
		}
		_, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Create(ctx, claim, metav1.CreateOptions{})
		switch {
		case err == nil:
			c.recorder.Eventf(set, corev1.EventTypeNormal, "SuccessfulCreate", "create Claim %s Pod %s in StatefulSet %s success", claim.Name, pod.Name, set.Name)
		case apierrors.IsAlreadyExists(err):
		default:
			c.recorder.Eventf(set, corev1.EventTypeWarning, "FailedCreate", "create Claim %s for Pod %s in StatefulSet %s failed error: %v", claim.Name, pod.Name, set.Name, err)
			return fmt.Errorf("statefulset %s/%s: create claim %s: %w", set.Namespace, set.Name, claim.Name, err)
		}
	}
	_, err = c.client.CoreV1().Pods(set.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	switch {
	case err == nil:
		c.recorder.Eventf(set, corev1.EventTypeNormal, "SuccessfulCreate", "create Pod %s in StatefulSet %s successful", pod.Name, set.Name)
	case apierrors.IsAlreadyExists(err):
	default:
		c.recorder.Eventf(set, corev1.EventTypeWarning, "FailedCreate", "create Pod %s in StatefulSet %s failed error: %v", pod.Name, set.Name, err)
		return fmt.Errorf("statefulset %s/%s: create pod %s: %w", set.Namespace, set.Name, pod.Name, err)
	}
	return nil
}

// trimHistory deletes revisions beyond revisionHistoryLimit that neither
// status nor any pod refers to. Failures are logged: history is retried
// on the next reconcile.
func (c *Controller) trimHistory(ctx context.Context, set *appsv1.StatefulSet, revs []*appsv1.ControllerRevision, st appsv1.StatefulSetStatus, pods []*corev1.Pod) {
	limit := 10
	if set.Spec.RevisionHistoryLimit != nil {
		limit = max(int(*set.Spec.RevisionHistoryLimit), 0)
	}
	if len(revs) <= limit {
		return
	}
	live := map[string]bool{st.CurrentRevision: true, st.UpdateRevision: true}
	for _, p := range pods {
		live[revisionOf(p)] = true
	}
	for _, r := range revisionsToDelete(revs, live, limit) {
		err := c.client.AppsV1().ControllerRevisions(r.Namespace).Delete(ctx, r.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			c.log.Info("deleting old revision failed", "revision", r.Name, "err", err)
		}
	}
}
