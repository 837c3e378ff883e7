package deployment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// errCollision is returned (wrapped) when the new ReplicaSet's name is
// taken by a ReplicaSet with another template; the collision count has
// been raised, and the retry uses another hash.
var errCollision = errors.New("replicaset name collision")

// sync reconciles one Deployment: claim its ReplicaSets, decide, write.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, nm, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	d, err := c.dLister.Deployments(ns).Get(nm)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deployment %s: %w", key, err)
	}
	rsList, err := c.claim(ctx, d)
	if err != nil {
		return fmt.Errorf("deployment %s: claiming replicasets: %w", key, err)
	}
	p := decide(d, rsList, c.now())
	if p.rollback != nil {
		return c.autoRollback(ctx, d, p.rollback)
	}
	if err := c.apply(ctx, d, rsList, p); err != nil {
		return fmt.Errorf("deployment %s: %w", key, err)
	}
	if p.requeueAfter > 0 {
		c.queue.AddAfter(key, p.requeueAfter)
	}
	return nil
}

// apply writes a plan: create the new ReplicaSet, update the ReplicaSets
// whose replicas, annotations or minReadySeconds changed (the new one
// first), delete old history, then the Deployment's status and revision
// annotation if they changed.
func (c *Controller) apply(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, p plan) error {
	listed := make(map[types.UID]*appsv1.ReplicaSet, len(rsList))
	for _, rs := range rsList {
		listed[rs.UID] = rs
	}
	var updates []*appsv1.ReplicaSet
	if p.newRS != nil {
		if p.createNew {
			if err := c.createRS(ctx, d, p.newRS); err != nil {
				return err
			}
		} else {
			updates = append(updates, p.newRS)
		}
	}
	updates = append(updates, p.oldRSs...)
	for _, rs := range updates {
		orig := listed[rs.UID]
		if orig == nil || !rsChanged(orig, rs) {
			continue
		}
		if _, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Update(ctx, rs, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("updating replicaset %s: %w", rs.Name, err)
		}
		if from, to := rsReplicas(orig), rsReplicas(rs); from != to {
			verb := "up"
			if to < from {
				verb = "down"
			}
			c.recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", verb, rs.Name, from, to)
		}
	}
	for _, rs := range p.deletes {
		uid := rs.UID
		err := c.client.AppsV1().ReplicaSets(rs.Namespace).Delete(ctx, rs.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting old replicaset %s: %w", rs.Name, err)
		}
		c.log.Debug("deleted old replicaset", "deployment", d.Namespace+"/"+d.Name, "replicaset", rs.Name)
	}
	if annotationsEqual(p.d.Annotations, d.Annotations) && apiequality.Semantic.DeepEqual(p.d.Status, d.Status) {
		return nil
	}
	if _, err := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, p.d, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating status: %w", err)
	}
	return nil
}

// rsChanged reports whether the planned ReplicaSet differs from the listed
// one in what the controller writes.
func rsChanged(orig, want *appsv1.ReplicaSet) bool {
	return rsReplicas(orig) != rsReplicas(want) ||
		orig.Spec.MinReadySeconds != want.Spec.MinReadySeconds ||
		!annotationsEqual(orig.Annotations, want.Annotations)
}

// createRS creates the new ReplicaSet. A name already taken by a
// ReplicaSet of this Deployment with the same template means the cache is
// behind (retry); taken by any other, it is a hash collision: the
// Deployment's collisionCount goes up so that the next try hashes to
// another name.
func (c *Controller) createRS(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet) error {
	_, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Create(ctx, rs, metav1.CreateOptions{})
	if err == nil {
		if n := rsReplicas(rs); n > 0 {
			c.recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d", rs.Name, n)
		}
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating replicaset %s: %w", rs.Name, err)
	}
	existing, gerr := c.client.AppsV1().ReplicaSets(rs.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
	if gerr != nil {
		return fmt.Errorf("creating replicaset %s: %w", rs.Name, err)
	}
	if metav1.IsControlledBy(existing, d) && equalIgnoreHash(&existing.Spec.Template, &d.Spec.Template) {
		return fmt.Errorf("creating replicaset %s: %w", rs.Name, err) // cache lag: retry
	}
	next := d.DeepCopy()
	var n int32
	if next.Status.CollisionCount != nil {
		n = *next.Status.CollisionCount
	}
	n++
	next.Status.CollisionCount = &n
	if _, uerr := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); uerr != nil {
		return fmt.Errorf("raising collision count: %w", uerr)
	}
	return fmt.Errorf("replicaset %s: %w", rs.Name, errCollision)
}

// claim returns the ReplicaSets d controls after adopting matching
// orphans and releasing owned ReplicaSets that no longer match. Owned and
// orphaned ReplicaSets come from indexes, so the cost does not grow with
// the number of ReplicaSets in the namespace.
func (c *Controller) claim(ctx context.Context, d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("selector: %w", err)
	}
	if sel.Empty() {
		// The API server rejects an empty selector; never select everything.
		return nil, nil
	}
	owned, err := c.rsIndex.ByIndex(indexByController, string(d.UID))
	if err != nil {
		return nil, err
	}
	var out []*appsv1.ReplicaSet
	for _, obj := range owned {
		rs, ok := obj.(*appsv1.ReplicaSet)
		if !ok || rs.Namespace != d.Namespace {
			continue
		}
		if sel.Matches(labels.Set(rs.Labels)) {
			out = append(out, rs)
			continue
		}
		if rs.DeletionTimestamp == nil {
			if err := c.patchOwner(ctx, rs, releasePatch(rs, d.UID)); err != nil {
				return nil, fmt.Errorf("releasing replicaset %s: %w", rs.Name, err)
			}
		}
	}
	if d.DeletionTimestamp != nil {
		return out, nil
	}
	orph, err := c.rsIndex.ByIndex(indexOrphans, d.Namespace)
	if err != nil {
		return nil, err
	}
	checked := false
	for _, obj := range orph {
		rs, ok := obj.(*appsv1.ReplicaSet)
		if !ok || rs.DeletionTimestamp != nil || !sel.Matches(labels.Set(rs.Labels)) {
			continue
		}
		if !checked {
			// Adopt only for a Deployment that still exists as cached:
			// re-read it from the server (upstream does the same).
			fresh, err := c.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("rechecking deployment before adoption: %w", err)
			}
			if fresh.UID != d.UID || fresh.DeletionTimestamp != nil {
				return out, nil
			}
			checked = true
		}
		if err := c.patchOwner(ctx, rs, adoptPatch(rs, d)); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("adopting replicaset %s: %w", rs.Name, err)
		}
		adopted := rs.DeepCopy()
		adopted.OwnerReferences = append(adopted.OwnerReferences, *metav1.NewControllerRef(d, gvk))
		out = append(out, adopted)
	}
	return out, nil
}

func (c *Controller) patchOwner(ctx context.Context, rs *appsv1.ReplicaSet, patch []byte) error {
	_, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Patch(ctx, rs.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// adoptPatch is a merge patch making d the controller of rs; it carries
// rs's uid so that it fails on a replaced ReplicaSet of the same name.
func adoptPatch(rs *appsv1.ReplicaSet, d *appsv1.Deployment) []byte {
	refs := append(append([]metav1.OwnerReference(nil), rs.OwnerReferences...), *metav1.NewControllerRef(d, gvk))
	return ownerPatch(rs.UID, refs)
}

// releasePatch is a merge patch removing the owner reference to uid.
func releasePatch(rs *appsv1.ReplicaSet, uid types.UID) []byte {
	refs := []metav1.OwnerReference{}
	for _, r := range rs.OwnerReferences {
		if r.UID != uid {
			refs = append(refs, r)
		}
	}
	return ownerPatch(rs.UID, refs)
}

func ownerPatch(uid types.UID, refs []metav1.OwnerReference) []byte {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"uid": uid, "ownerReferences": refs}})
	return b
}

// autoRollback performs rb: the failing ReplicaSet loses its available
// mark, the Deployment gets the target's template (as kubectl rollout
// undo does), a Warning event says what happened, and the Progressing
// condition says AutoRolledBack, which restarts the progress deadline.
func (c *Controller) autoRollback(ctx context.Context, d *appsv1.Deployment, rb *rollback) error {
	if rb.from != nil {
		if _, ok := rb.from.Annotations[AvailableAtRevisionAnnotation]; ok {
			from := rb.from.DeepCopy()
			delete(from.Annotations, AvailableAtRevisionAnnotation)
			if _, err := c.client.AppsV1().ReplicaSets(from.Namespace).Update(ctx, from, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("auto-rollback: unmarking replicaset %s: %w", from.Name, err)
			}
		}
	}
	next := d.DeepCopy()
	next.Spec.Template = rb.template
	if cause, ok := rb.to.Annotations[ChangeCauseAnnotation]; ok {
		next.Annotations = maps.Clone(next.Annotations)
		next.Annotations[ChangeCauseAnnotation] = cause
	}
	updated, err := c.client.AppsV1().Deployments(d.Namespace).Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("auto-rollback: updating deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	fromName := "<none>"
	if rb.from != nil {
		fromName = rb.from.Name
	}
	msg := fmt.Sprintf("Rolled back from revision %d (replica set %s) to revision %d (replica set %s): progress deadline exceeded", rb.fromRevision, fromName, rb.toRevision, rb.to.Name)
	c.recorder.Event(updated, corev1.EventTypeWarning, "AutoRollback", msg)
	c.log.Warn("auto-rollback", "deployment", d.Namespace+"/"+d.Name, "fromRevision", rb.fromRevision, "toRevision", rb.toRevision)

	st := updated.DeepCopy()
	cond := condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonAutoRolledBack, msg, c.now())
	removeCondition(&st.Status, appsv1.DeploymentProgressing)
	setCondition(&st.Status, cond)
	if _, err := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, st, metav1.UpdateOptions{}); err != nil {
		// The spec is rolled back; the next sync rolls out normally and
		// only the AutoRolledBack reason is lost.
		return fmt.Errorf("auto-rollback: updating status: %w", err)
	}
	return nil
}
