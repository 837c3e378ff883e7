package sim

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// syncPod moves one pod bound to a live simulated node along its life
// (see nextAction). Pods of killed nodes are left as they are.
func (s *Sim) syncPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := s.podLister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		s.forgetPod(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("pod %q: %w", key, err)
	}
	n := s.nodes[pod.Spec.NodeName]
	if n == nil {
		s.forgetPod(key)
		return nil
	}
	n.life.RLock()
	defer n.life.RUnlock()
	if n.dead() {
		return nil
	}
	start := time.Now()
	times := s.trackPod(key, pod, start)
	act, wait := nextAction(pod, times, timing{startDelay: s.cfg.StartDelay, runTime: s.cfg.RunTime, runPods: s.cfg.RunPods}, start)
	now := metav1.NewTime(start)
	var st corev1.PodStatus
	switch act {
	case actNone:
		if wait > 0 {
			s.podQ.AddAfter(key, wait)
		}
		if p := pod.Status.Phase; p == corev1.PodSucceeded || p == corev1.PodFailed {
			s.forgetPod(key)
		}
		return nil
	case actDelete:
		err := s.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To(int64(0)),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting pod %q: %w", key, err)
		}
		return nil
	case actStart:
		st = runningStatus(pod, nodeIP(n.index), s.podIP(n, pod), now)
	case actComplete:
		st = completedStatus(pod, now)
	case actCrash:
		st = crashedStatus(pod, now)
	case actReadiness:
		st = *pod.Status.DeepCopy()
		setReadiness(pod, &st, true, now)
	}
	upd := pod.DeepCopy()
	upd.Status = st
	if _, err := s.client.CoreV1().Pods(ns).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("pod %q %s: %w", key, act, err)
	}
	s.podDone(key, pod, act, start)
	return nil
}

// podIP picks the next address for a pod on n: of the node's podCIDR when
// it has one, else of the fallback range.
func (s *Sim) podIP(n *simNode, pod *corev1.Pod) string {
	if node, err := s.nodeLister.Get(n.name); err == nil && node.Spec.PodCIDR != "" {
		if ip, err := podIPInCIDR(node.Spec.PodCIDR, n.podSeq.Add(1)-1); err == nil {
			return ip
		}
	}
	return fallbackPodIP(s.podSeq.Add(1) - 1)
}

// trackPod returns what the simulator remembers of pod, starting to track
// it (seen at now) if it is new or was recreated under the same name.
func (s *Sim) trackPod(key string, pod *corev1.Pod, now time.Time) podTimes {
	s.podMu.Lock()
	defer s.podMu.Unlock()
	t := s.podTimes[key]
	if t == nil || t.uid != pod.UID {
		t = &trackedPod{uid: pod.UID, times: podTimes{seen: now}}
		s.podTimes[key] = t
	}
	return t.times
}

// podDone records a successful write.
func (s *Sim) podDone(key string, pod *corev1.Pod, act podAction, at time.Time) {
	s.podMu.Lock()
	defer s.podMu.Unlock()
	t := s.podTimes[key]
	if t == nil || t.uid != pod.UID {
		return
	}
	switch act {
	case actStart:
		t.times.started = at
	case actCrash:
		t.times.crashed = at
	case actComplete:
		delete(s.podTimes, key)
	}
}

func (s *Sim) forgetPod(key string) {
	s.podMu.Lock()
	delete(s.podTimes, key)
	s.podMu.Unlock()
}

// podHandler queues pods bound to this simulator's nodes and keeps their
// nodes' CPU counters continuous (accountPod).
func (s *Sim) podHandler() cache.ResourceEventHandlerFuncs {
	enqueue := func(obj any) {
		if pod, ok := obj.(*corev1.Pod); ok && s.nodes[pod.Spec.NodeName] != nil {
			s.podQ.Enqueue(pod)
		}
	}
	asPod := func(obj any) *corev1.Pod {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		pod, _ := obj.(*corev1.Pod)
		return pod
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			s.accountPod(nil, asPod(obj))
			enqueue(obj)
		},
		UpdateFunc: func(old, obj any) {
			s.accountPod(asPod(old), asPod(obj))
			enqueue(obj)
		},
		DeleteFunc: func(obj any) {
			s.accountPod(asPod(obj), nil)
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				s.forgetPod(key)
			}
		},
	}
}
