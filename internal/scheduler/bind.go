package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// bind POSTs pods/binding for a decision. On failure the assumed pod is
// forgotten and the pod retried after its back-off.
func (s *Scheduler) bind(ctx context.Context, qp *queuedPod, cycle int64, node string, began time.Time) {
	pod := qp.info.pod
	b := &v1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     v1.ObjectReference{Kind: "Node", Name: node},
	}
	err := s.client.CoreV1().Pods(pod.Namespace).Bind(ctx, b, metav1.CreateOptions{})
	if err != nil {
		s.cache.Forget(qp.info.key)
		if ctx.Err() == nil {
			s.metrics.errorAttempt(began)
		}
		if apierrors.IsNotFound(err) || ctx.Err() != nil {
			s.queue.Done(qp.info.key)
			return
		}
		s.log.Info("binding failed, retrying", "pod", qp.info.key, "node", node, "err", err)
		s.queue.Unschedulable(qp, cycle, true)
		s.recorder.Eventf(pod, v1.EventTypeWarning, "FailedScheduling", "Binding rejected: %v", err)
		return
	}
	s.metrics.boundAttempt(began, qp)
	s.queue.Done(qp.info.key)
	if s.cfg.OnBound != nil {
		s.cfg.OnBound(pod.Namespace, pod.Name, node)
	}
	s.recorder.Eventf(pod, v1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, node)
}

// recordFailure reports a failed decision: the FailedScheduling event, the
// PodScheduled=False condition (and nominatedNodeName) through pods/status
// when they changed, and, after a preemption, the victims' deletion.
func (s *Scheduler) recordFailure(ctx context.Context, pod *v1.Pod, msg, nominated string, victims []*v1.Pod) {
	s.recorder.Event(pod, v1.EventTypeWarning, "FailedScheduling", msg)
	for _, v := range victims {
		s.recorder.Eventf(v, v1.EventTypeNormal, "Preempted", "Preempted by pod %s on node %s", pod.UID, nominated)
		if err := s.markDisruptionTarget(ctx, v, pod); err != nil && ctx.Err() == nil {
			s.log.Info("marking preemption victim failed", "pod", v.Namespace+"/"+v.Name, "err", err)
		}
		uid := v.UID
		err := s.client.CoreV1().Pods(v.Namespace).Delete(ctx, v.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			s.log.Info("deleting preemption victim failed", "pod", v.Namespace+"/"+v.Name, "err", err)
		}
	}
	if err := s.updateCondition(ctx, pod, msg, nominated); err != nil && ctx.Err() == nil {
		s.log.Info("updating pod status failed", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
}

// markDisruptionTarget gives a preemption victim upstream's
// DisruptionTarget condition (reason PreemptionByScheduler) before it is
// deleted, so its controller and its users learn why it went.
func (s *Scheduler) markDisruptionTarget(ctx context.Context, victim, preemptor *v1.Pod) error {
	cond := v1.PodCondition{
		Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: v1.PodReasonPreemptionByScheduler,
		Message:            fmt.Sprintf("%s: preempting to accommodate a higher priority pod", schedulerName(preemptor)),
		LastTransitionTime: metav1.Now(),
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": victim.UID},
		"status":   map[string]any{"conditions": []v1.PodCondition{cond}},
	})
	if err != nil {
		return err
	}
	_, err = s.client.CoreV1().Pods(victim.Namespace).Patch(ctx, victim.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone, or replaced by a pod of the same name
	}
	return err
}

// updateCondition writes PodScheduled=False/Unschedulable with msg and the
// nominated node, starting from the informer's copy and re-reading from
// the server once on a conflict. Nothing is written if nothing changed.
func (s *Scheduler) updateCondition(ctx context.Context, pod *v1.Pod, msg, nominated string) error {
	if cur, err := s.pods.Pods(pod.Namespace).Get(pod.Name); err == nil && cur.UID == pod.UID {
		pod = cur
	}
	for attempt := 0; ; attempt++ {
		updated, changed := withUnschedulable(pod, msg, nominated)
		if !changed {
			return nil
		}
		_, err := s.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt > 0 {
			return fmt.Errorf("pod %s/%s status: %w", pod.Namespace, pod.Name, err)
		}
		fresh, err := s.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		if fresh.UID != pod.UID || fresh.Spec.NodeName != "" {
			return nil // replaced, or bound meanwhile
		}
		pod = fresh
	}
}

// withUnschedulable returns a copy of pod with the PodScheduled=False
// condition (reason Unschedulable, message msg) and, if nominated is set,
// status.nominatedNodeName; changed is false when pod already has them.
func withUnschedulable(pod *v1.Pod, msg, nominated string) (*v1.Pod, bool) {
	cond := v1.PodCondition{Type: v1.PodScheduled, Status: v1.ConditionFalse, Reason: v1.PodReasonUnschedulable, Message: msg}
	idx := -1
	for i, c := range pod.Status.Conditions {
		if c.Type == v1.PodScheduled {
			idx = i
		}
	}
	same := idx >= 0 && pod.Status.Conditions[idx].Status == cond.Status &&
		pod.Status.Conditions[idx].Reason == cond.Reason && pod.Status.Conditions[idx].Message == cond.Message
	if same && (nominated == "" || pod.Status.NominatedNodeName == nominated) {
		return pod, false
	}
	out := pod.DeepCopy()
	now := metav1.Now()
	cond.LastTransitionTime = now
	if idx >= 0 {
		if out.Status.Conditions[idx].Status == cond.Status {
			cond.LastTransitionTime = out.Status.Conditions[idx].LastTransitionTime
		}
		out.Status.Conditions[idx] = cond
	} else {
		out.Status.Conditions = append(out.Status.Conditions, cond)
	}
	if nominated != "" {
		out.Status.NominatedNodeName = nominated
	}
	return out, true
}
