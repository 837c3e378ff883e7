package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// defaultVolumeBindTimeout is how long PreBind waits for a pod's claims to
// be bound: upstream's VolumeBinding bindTimeoutSeconds default.
const defaultVolumeBindTimeout = 600 * time.Second

// errPodGone ends a PreBind whose pod was deleted or replaced meanwhile.
var errPodGone = errors.New("pod does not exist any more")

// bindWithVolumes is VolumeBinding's PreBind, then the binding: it writes
// plan (volumes pre-bound to their claims, claims annotated with the
// selected node for their provisioner), waits until every claim of the
// pod is bound, and binds the pod. It runs in its own goroutine, not on a
// bind worker, since the wait can be long; it ends early when ctx does,
// when the pod goes, or when the volume controller or a provisioner
// undoes the plan. On failure the pod's assumed volumes and node are
// forgotten and it is retried after its back-off.
func (s *Scheduler) bindWithVolumes(ctx context.Context, qp *queuedPod, cycle int64, node string, began time.Time, plan *volumePlan) {
	pod := qp.info.pod
	err := s.writeVolumes(ctx, plan)
	if err == nil {
		if err = s.waitVolumesBound(ctx, pod, node, plan); err != nil {
			err = fmt.Errorf("binding volumes: %w", err)
		}
	}
	if err == nil {
		s.bind(ctx, qp, cycle, node, began)
		return
	}
	s.volumes.revert(plan)
	s.cache.Forget(qp.info.key)
	if ctx.Err() != nil || errors.Is(err, errPodGone) {
		s.queue.Done(qp.info.key)
		return
	}
	s.metrics.errorAttempt(began)
	s.log.Info("binding volumes failed, retrying", "pod", qp.info.key, "node", node, "err", err)
	s.queue.Unschedulable(qp, cycle, true)
	s.recorder.Eventf(pod, v1.EventTypeWarning, "FailedScheduling", "running PreBind plugin %q: %v", "VolumeBinding", err)
}

// writeVolumes makes plan's API writes, as upstream's bindAPIUpdate:
// updates, so that a stale decision fails on a conflict.
func (s *Scheduler) writeVolumes(ctx context.Context, plan *volumePlan) error {
	for i := range plan.static {
		sb := &plan.static[i]
		if !sb.written {
			continue
		}
		pv, err := s.client.CoreV1().PersistentVolumes().Update(ctx, sb.pv, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		s.log.Info("volume pre-bound to claim", "pv", pv.Name, "pvc", sb.claim.Namespace+"/"+sb.claim.Name)
		sb.pv = pv
	}
	for _, pr := range plan.provision {
		if !pr.written {
			continue
		}
		c, err := s.client.CoreV1().PersistentVolumeClaims(pr.claim.Namespace).Update(ctx, pr.claim, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		pr.claim = c
	}
	return nil
}

// waitVolumesBound waits, at most cfg.VolumeBindTimeout, until the claims
// of plan are bound, re-checking at every claim or volume change.
func (s *Scheduler) waitVolumesBound(ctx context.Context, pod *v1.Pod, node string, plan *volumePlan) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.VolumeBindTimeout)
	defer cancel()
	for {
		changed := s.volumes.changes()
		if cur, err := s.pods.Pods(pod.Namespace).Get(pod.Name); err != nil || cur.UID != pod.UID {
			return errPodGone
		}
		n, err := s.nodes.Get(node)
		if err != nil {
			return fmt.Errorf("failed to get node %q: %w", node, err)
		}
		bound, err := s.volumes.planBound(plan, n)
		if bound || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// planBound reports whether every claim of plan is bound, from the
// informers' objects (not the assumed ones), as upstream's checkBindings;
// an error means the binding was undone or cannot work on node, and the
// pod must be scheduled again.
func (b *volumeBinder) planBound(plan *volumePlan, node *v1.Node) (bool, error) {
	nodeLabels := labels.Set(node.Labels)
	for _, sb := range plan.static {
		obj, ok, err := b.pvs.GetByKey(sb.pv.Name)
		if err != nil || !ok {
			return false, fmt.Errorf("failed to check binding: persistentvolume %q not found", sb.pv.Name)
		}
		pv, _ := obj.(*v1.PersistentVolume)
		if pv == nil {
			return false, fmt.Errorf("failed to check binding: persistentvolume %q not found", sb.pv.Name)
		}
		c, err := b.claims.PersistentVolumeClaims(sb.claim.Namespace).Get(sb.claim.Name)
		if err != nil {
			return false, fmt.Errorf("failed to check binding: %w", err)
		}
		if newerVersion(sb.pv.ResourceVersion, pv.ResourceVersion) {
			return false, nil // our write has not reached the informer yet
		}
		if !compilePVAffinity(pv).matches(nodeLabels) {
			return false, fmt.Errorf("pv %q node affinity doesn't match node %q: no matching NodeSelectorTerms", pv.Name, node.Name)
		}
		if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID == "" {
			return false, fmt.Errorf("ClaimRef got reset for pv %q", pv.Name)
		}
		if !claimFullyBound(c) {
			return false, nil
		}
	}
	for _, pr := range plan.provision {
		c, err := b.claims.PersistentVolumeClaims(pr.claim.Namespace).Get(pr.claim.Name)
		if err != nil {
			return false, fmt.Errorf("failed to check provisioning pvc: %w", err)
		}
		if newerVersion(pr.claim.ResourceVersion, c.ResourceVersion) {
			return false, nil
		}
		if c.Annotations == nil {
			return false, fmt.Errorf("selectedNode annotation reset for PVC %q", c.Name)
		}
		if c.Annotations[annSelectedNode] != node.Name {
			// A provisioner that fails removes the annotation, so
			// that the scheduler tries again.
			return false, fmt.Errorf("provisioning failed for PVC %q", c.Name)
		}
		if c.Spec.VolumeName != "" {
			obj, ok, err := b.pvs.GetByKey(c.Spec.VolumeName)
			if err != nil || !ok {
				return false, nil // not seen yet; a deleted one unbinds the claim
			}
			if pv, _ := obj.(*v1.PersistentVolume); pv != nil && !compilePVAffinity(pv).matches(nodeLabels) {
				return false, fmt.Errorf("pv %q node affinity doesn't match node %q: no matching NodeSelectorTerms", pv.Name, node.Name)
			}
		}
		if !claimFullyBound(c) {
			return false, nil
		}
	}
	return true, nil
}
